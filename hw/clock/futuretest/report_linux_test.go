//go:build linux

package futuretest

import (
	"strings"
	"testing"
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
