package apparmorlog

import (
	"bufio"
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
		r := Rule(d)
		if r == "" {
			return
		}
		if !strings.HasSuffix(r, ",") || strings.ContainsAny(r, "\n\r\x00#") && !strings.HasPrefix(r, `"`) {
			t.Fatalf("rule %q is not one clean rule", r)
		}
		if strings.ContainsAny(r, "\n\r\x00") {
			t.Fatalf("rule %q spans lines", r)
		}
		body := strings.TrimSuffix(r, ",")
		if unq := strings.Count(body, `"`); unq != 0 && unq != 2 {
			t.Fatalf("rule %q has unbalanced quotes", r)
		}
		if strings.Count(body, `"`) == 0 && strings.Contains(body, ",") {
			t.Fatalf("rule %q has a comma outside quotes", r)
		}
	})
}
