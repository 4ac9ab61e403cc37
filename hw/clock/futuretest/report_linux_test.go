//go:build linux

package futuretest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aunsorm/timenode/timing/integrity/attacksim"
)

// TestSummarizeAndRetryPattern: a failed subtest is rerun through its
// top-level test, named once and quoted for -test.run, and its log is
// kept for the report.
func TestSummarizeAndRetryPattern(t *testing.T) {
	out := []byte(strings.Join([]string{
		"=== RUN   TestA",
		"--- PASS: TestA (0.00s)",
		"=== RUN   TestB",
		"=== RUN   TestB/case.1",
		"    b_test.go:10: bound 2.003ms, want < 1ms",
		"    --- FAIL: TestB/case.1 (0.10s)",
		"=== RUN   TestB/case_2",
		"    --- FAIL: TestB/case_2 (0.10s)",
		"--- FAIL: TestB (0.20s)",
		"=== RUN   TestC",
		"    c_test.go:3: qemu not installed",
		"--- SKIP: TestC (0.00s)",
		"FAIL",
	}, "\n"))
	r := summarize(out)
	if r.pass != 1 || len(r.fail) != 3 || len(r.skips) != 1 || r.skips[0] != "TestC: qemu not installed" {
		t.Fatalf("summary %+v", r)
	}
	if !strings.Contains(strings.Join(r.failLog, "\n"), "bound 2.003ms") {
		t.Errorf("fail log %q lacks the failed subtest's line", r.failLog)
	}
	if got := strings.Join(topLevel(r.fail), "|"); got != "TestB" {
		t.Errorf("rerun pattern %q, want TestB once", got)
	}
	if got := topLevel([]string{"Test.X/y"}); got[0] != `Test\.X` {
		t.Errorf("quoted %q, want Test\\.X", got[0])
	}
}

// TestJudgeReportsRetriesWithoutFailing: a RETRY line is returned for
// the end of the log and does not fail a guest that passed; OUT lines do.
func TestJudgeReportsRetriesWithoutFailing(t *testing.T) {
	report := "PKG cmd/timenoded ok 10.0s pass=3 fail=1 skip=0\nRETRY cmd/timenoded | --- FAIL: TestX (1s)\n" + resultMarker + "PASS\n"
	failed, retried := judge(t, report)
	if len(failed) != 0 || len(retried) != 1 || !strings.Contains(retried[0], "TestX") {
		t.Errorf("failed %q retried %q, want no failure and the retry", failed, retried)
	}
}

// TestRunPackagesRerunsAloneAfterTheRest: packages run two at a time, the
// slowest first; a failed test is rerun only after every first run has
// ended, so it runs alone; a rerun that passes reports RETRY and does not
// count, one that fails again does, and so does a package that failed
// with no test failed (a panic).
func TestRunPackagesRerunsAloneAfterTheRest(t *testing.T) {
	pkgs := slowFirst([]testPackage{
		{"a.test", "a"}, {"flaky.test", "flaky"}, {"dated.test", "dated"},
		{"panics.test", "panics"}, {"sim.test", "timing/simbench"}, {"d.test", "cmd/timenoded"},
	})
	if got := []string{pkgs[0].dir, pkgs[1].dir, pkgs[2].dir}; strings.Join(got, ",") != "cmd/timenoded,timing/simbench,a" {
		t.Fatalf("order %v: the slowest listed first, the rest as given", got)
	}
	fail := func(name string) []byte {
		return []byte("=== RUN   " + name + "\n    x_test.go:1: off by 2s\n--- FAIL: " + name + " (0.00s)\nFAIL\n")
	}
	var (
		mu                   sync.Mutex
		running, most, first int
		rerunEarly           bool
		both                 = make(chan struct{}) // closed when two run at once
	)
	run := func(bin, dir, pattern string) ([]byte, error) {
		mu.Lock()
		running++
		most = max(most, running)
		if pattern == "" {
			first++
		} else if first < len(pkgs) || running > 1 {
			rerunEarly = true
		}
		if running == 2 && most == 2 && first == 2 {
			close(both)
		}
		mu.Unlock()
		if pattern == "" {
			select { // the first runs wait for each other, never forever
			case <-both:
			case <-time.After(10 * time.Second):
			}
		}
		mu.Lock()
		running--
		mu.Unlock()
		switch {
		case dir == "flaky" && pattern == "":
			return fail("TestLoad/sub"), errors.New("exit status 1")
		case dir == "dated":
			return fail("TestDate"), errors.New("exit status 1")
		case dir == "panics":
			return []byte("panic: boom\n"), errors.New("exit status 2")
		}
		return []byte("=== RUN   TestOK\n--- PASS: TestOK (0.00s)\nPASS\n"), nil
	}
	var report strings.Builder
	failed := runPackages(pkgs, 2, run, func(s string) { report.WriteString(s) })
	if failed != 2 {
		t.Errorf("%d packages failed, want 2 (dated, panics)\n%s", failed, report.String())
	}
	if most != 2 || rerunEarly {
		t.Errorf("at most %d at once, a rerun before the first runs ended or beside another: %v", most, rerunEarly)
	}
	got := report.String()
	for _, want := range []string{
		"PKG flaky ok", "RETRY flaky | --- FAIL: TestLoad/sub",
		"PKG dated FAIL", "the rerun of ^(TestDate)$ failed too:",
		"PKG panics FAIL", "OUT panics | panic: boom",
		"PKG cmd/timenoded ok",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "PKG "); n != len(pkgs) {
		t.Errorf("%d PKG lines, want %d", n, len(pkgs))
	}
}

// TestNarrowNamesARealScenario: a narrowed package's first run and rerun
// both keep its subtest pattern, other packages' patterns pass through,
// and attacksim's pattern names one of its scenarios exactly, so a
// renamed scenario cannot leave the guest running none of them.
func TestNarrowNamesARealScenario(t *testing.T) {
	const dir = "timing/integrity/attacksim"
	for _, c := range []struct{ dir, pattern, want string }{
		{"netsvc", "", ""},
		{"netsvc", "^(TestA)$", "^(TestA)$"},
		{dir, "", "/" + guestSubtests[dir]},
		{dir, "^(TestAttacks)$", "^(TestAttacks)$/" + guestSubtests[dir]},
	} {
		if got := narrow(c.dir, c.pattern); got != c.want {
			t.Errorf("narrow(%q, %q) = %q, want %q", c.dir, c.pattern, got, c.want)
		}
	}
	var names []string
	for _, s := range attacksim.Scenarios() {
		names = append(names, s.Name)
	}
	if !slices.Contains(names, guestSubtests[dir]) {
		t.Errorf("guest runs attacksim's subtests %q; its scenarios are %q", guestSubtests[dir], names)
	}
	var patterns []string
	run := func(bin, dir, pattern string) ([]byte, error) {
		patterns = append(patterns, pattern)
		return []byte("=== RUN   TestAttacks/x/y\n    --- FAIL: TestAttacks/x/y (0.00s)\n--- FAIL: TestAttacks (0.00s)\nFAIL\n"), errors.New("exit status 1")
	}
	p := firstRun(testPackage{"attacksim.test", dir}, run)
	p.rerun(run)
	sub := guestSubtests[dir]
	if want := []string{"/" + sub, "^(TestAttacks)$/" + sub}; !slices.Equal(patterns, want) {
		t.Errorf("ran %q, want %q", patterns, want)
	}
	if r := p.report(); !strings.Contains(r, " subtests="+sub+"\n") {
		t.Errorf("report %q does not say which subtests ran", r)
	}
}
