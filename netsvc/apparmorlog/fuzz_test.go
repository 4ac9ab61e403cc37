package apparmorlog

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseLine feeds arbitrary lines, seeded from testdata/, and checks
// that parsing never panics and that a proposed rule is always a single
// AppArmor rule: one line, ending in a comma, no comment or second rule
// smuggled in from the log.
func FuzzParseLine(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.log")
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			f.Add(sc.Text())
		}
		fh.Close()
	}
	f.Fuzz(func(t *testing.T, line string) {
		d, ok := ParseLine(line)
		if !ok {
			if d != (Denial{}) {
				t.Fatalf("not a denial but fields set: %+v", d)
			}
			return
		}
		if !strings.Contains(line, "DENIED") {
			t.Fatalf("denial from a line without DENIED: %q", line)
		}
		c := Classify(d)
		found := false
		for _, k := range Classes() {
			found = found || k == c
		}
		if !found {
			t.Fatalf("class %q not in Classes()", c)
		}
		if err := oneRule(Rule(d)); err != nil {
			t.Fatal(err)
		}
	})
}

// oneRule is the fuzz target's oracle for a proposed rule: empty (no
// rule proposed), or one line ending in a comma, with no comment ('#')
// and no comma outside double quotes and balanced quotes. AppArmor reads
// '#' as a comment only outside quotes, and Rule quotes a value holding
// one: the oracle used to flag every '#' in a rule not starting with a
// quote, so a quoted peer such as peer="a#b" failed it within seconds.
func oneRule(r string) error {
	if r == "" {
		return nil
	}
	if strings.ContainsAny(r, "\n\r\x00") {
		return fmt.Errorf("rule %q spans lines", r)
	}
	if !strings.HasSuffix(r, ",") {
		return fmt.Errorf("rule %q does not end in a comma", r)
	}
	body := strings.TrimSuffix(r, ",")
	if n := strings.Count(body, `"`); n != 0 && n != 2 {
		return fmt.Errorf("rule %q has unbalanced quotes", r)
	}
	out := unquoted(body)
	if strings.Contains(out, "#") {
		return fmt.Errorf("rule %q has a comment outside quotes", r)
	}
	if strings.Contains(out, ",") {
		return fmt.Errorf("rule %q has a comma outside quotes", r)
	}
	return nil
}

// unquoted is s without its double-quoted parts.
func unquoted(s string) string {
	var b strings.Builder
	in := false
	for _, c := range s {
		if c == '"' {
			in = !in
			continue
		}
		if !in {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func TestOneRuleOracle(t *testing.T) {
	tests := []struct {
		rule string
		ok   bool
	}{
		{"", true},
		{"deny ptrace (read) peer=unconfined,", true},
		{`deny ptrace (read) peer="a#b",`, true}, // the old oracle's false positive
		{`"/tmp/a, /b" w,`, true},
		{"deny ptrace (read) peer=a#b,", false},
		{"/tmp/a r, /b w,", false},
		{"/tmp/a r,\n/** rw,", false},
		{`"/tmp/a r,`, false},
		{"/tmp/a r", false},
	}
	for _, tt := range tests {
		if err := oneRule(tt.rule); (err == nil) != tt.ok {
			t.Errorf("oneRule(%q) = %v, want ok %v", tt.rule, err, tt.ok)
		}
	}
}
