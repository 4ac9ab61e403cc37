package monitoring

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// promtool returns the promtool binary, or skips (fails under CI=true)
// naming the Debian package that provides it.
func promtool(t *testing.T) string {
	t.Helper()
	return testbin.NeedTool(t, "promtool", "prometheus")
}

func runPromtool(t *testing.T, bin, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPromtoolRules: the rules are valid and pass their unit tests.
func TestPromtoolRules(t *testing.T) {
	bin := promtool(t)
	if out, err := runPromtool(t, bin, ".", "check", "rules", "alerts.yml"); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := runPromtool(t, bin, ".", "test", "rules", "alerts_test.yml"); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestPromtoolCatchesThresholdMutations proves the unit tests pin each
// threshold: flipping the comparison of any one alert (> to >=, < to <=,
// == to !=, != to ==) must make `promtool test rules` fail. One promtool
// run checks every mutant, each in its own directory.
func TestPromtoolCatchesThresholdMutations(t *testing.T) {
	bin := promtool(t)
	if testing.Short() {
		t.Skip("mutation run skipped in -short")
	}
	rulesText, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	flips := []struct{ from, to string }{{" >= ", " > "}, {" <= ", " < "}, {" > ", " >= "}, {" < ", " <= "}, {" == ", " != "}, {" != ", " == "}}
	root := t.TempDir()
	args := []string{"test", "rules"}
	mutants := map[string]string{} // test file → alert
	for _, r := range readRules(t) {
		mutated := ""
		for _, f := range flips {
			if strings.Contains(r.expr, f.from) {
				mutated = strings.Replace(r.expr, f.from, f.to, 1)
				break
			}
		}
		if mutated == "" {
			t.Errorf("%s: no comparison to flip in %q", r.alert, r.expr)
			continue
		}
		text := strings.Replace(string(rulesText), "expr: "+r.expr+"\n", "expr: "+mutated+"\n", 1)
		if text == string(rulesText) {
			t.Errorf("%s: expression %q not found to mutate", r.alert, r.expr)
			continue
		}
		dir := filepath.Join(root, r.alert)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "alerts_test.yml")
		if err := os.WriteFile(file, tests, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, file)
		mutants[file] = r.alert
	}
	out, err := runPromtool(t, bin, root, args...)
	if err == nil {
		t.Fatalf("promtool test rules passed every mutant:\n%s", out)
	}
	// Output: "Unit Testing:  FILE" then "  SUCCESS" or "  FAILED:" lines.
	sections := strings.Split(out, "Unit Testing:")
	for file, alert := range mutants {
		verdict := ""
		for _, sec := range sections {
			if strings.HasPrefix(strings.TrimSpace(sec), file) {
				verdict = sec
			}
		}
		if verdict == "" {
			t.Errorf("%s: no result for %s in promtool output:\n%s", alert, file, out)
		} else if !strings.Contains(verdict, "FAILED") {
			t.Errorf("%s: unit tests still pass with its threshold comparison flipped", alert)
		}
	}
}

// TestAlertsWithRunbookBase: the exported rules have absolute runbook
// URLs, each naming a runbook that exists, and promtool still accepts them.
func TestAlertsWithRunbookBase(t *testing.T) {
	for _, bad := range []string{"", "docs/", "https://git.example.com/timenode", "ftp://x/", "://x/"} {
		if _, err := AlertsWithRunbookBase(bad); err == nil {
			t.Errorf("base %q accepted", bad)
		}
	}
	const base = "https://git.example.com/timenode/-/raw/v0.2.0/"
	out, err := AlertsWithRunbookBase(base)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		_, u, ok := strings.Cut(l, "runbook_url: ")
		if !ok {
			continue
		}
		n++
		rel, ok := strings.CutPrefix(u, base+RunbookPrefix)
		if !ok {
			t.Errorf("runbook_url %q not under %s", u, base+RunbookPrefix)
			continue
		}
		if _, err := os.Stat(filepath.Join("../../docs/runbooks", rel)); err != nil {
			t.Errorf("runbook_url %q: %v", u, err)
		}
	}
	if n == 0 || n != len(readRules(t)) {
		t.Errorf("%d runbook URLs for %d alerts", n, len(readRules(t)))
	}
	bin := promtool(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runPromtool(t, bin, dir, "check", "rules", "alerts.yml"); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
