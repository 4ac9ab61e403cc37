package proccpu

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseStatTicks(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want uint64
		ok   bool
	}{
		{"plain", "42 (chronyd) S 1 42 42 0 -1 4194560 300 0 0 0 120 35 0 0 20 0 1 0 100 1000 10", 155, true},
		{"name with spaces and parens", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1", 11, true},
		{"no name", "7 a R 1", 0, false},
		{"short", "7 (x) R 1 2 3", 0, false},
		{"not numbers", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 u s 0", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseStatTicks([]byte(tc.stat))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: %d, %v; want %d, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

// TestOwnCPU: our own process's and thread's figures move with work done.
func TestOwnCPU(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := Ticks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	thread := ThreadCPU()
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	if after, _ := Ticks(os.Getpid()); after <= before {
		t.Errorf("50 ms of spinning did not add CPU ticks: %d -> %d", before, after)
	}
	if d := ThreadCPU() - thread; d < 10*time.Millisecond {
		t.Errorf("50 ms of spinning added %v to the thread's CPU time", d)
	}
	if _, err := Ticks(-1); err == nil {
		t.Error("a pid that cannot exist had a CPU time")
	}
}

// TestStartPinned: a child started on CPU 0 is allowed only CPU 0, and the
// starting thread gets its old set back.
func TestStartPinned(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1) here")
	}
	before := AllowedCPUs(os.Getpid())
	cmd := exec.Command(sleep, "5")
	if err := StartPinned(cmd, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if got := AllowedCPUs(cmd.Process.Pid); got != "0" {
		t.Errorf("the child runs on CPUs %q, want 0", got)
	}
	if got := AllowedCPUs(os.Getpid()); got != before || strings.TrimSpace(got) == "?" {
		t.Errorf("our CPUs %q after the start, want %q", got, before)
	}
	if got := AllowedCPUs(-1); got != "?" {
		t.Errorf("AllowedCPUs of no process: %q", got)
	}
}
