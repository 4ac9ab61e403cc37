package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// TestMain lets the test binary stand in for servebench when the benchmark
// starts its hello server as a child (os.Executable is the test binary).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == helloChildFlag {
		os.Exit(serveHelloChild(os.Args[2:], os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// children lists the pids whose parent is this process.
func children(t *testing.T) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	me := strconv.Itoa(os.Getpid())
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		if f := strings.Fields(rest); len(f) > 1 && f[1] == me {
			out = append(out, filepath.Base(filepath.Dir(p)))
		}
	}
	return out
}

func TestMergePoolsRounds(t *testing.T) {
	a := result{name: "x", window: time.Second, lat: []time.Duration{3, 5}, bytes: 20, errors: 1}
	b := result{name: "x", window: time.Second, lat: []time.Duration{1, 4}, bytes: 10}
	got := result{}.merge(a).merge(b)
	if got.name != "x" || got.window != 2*time.Second || got.bytes != 30 || got.errors != 1 {
		t.Fatalf("merged %+v", got)
	}
	if want := []time.Duration{1, 3, 4, 5}; !slices.Equal(got.lat, want) {
		t.Errorf("latencies %v, want %v", got.lat, want)
	}
	if r := got.rate(); r != 2 {
		t.Errorf("rate %v, want 2 per second", r)
	}
}

// TestBenchRuns runs the whole benchmark briefly against a daemon it
// builds: three rows with positive rates and latencies, no failed
// request, and the ratio line. Speed is not asserted.
func TestBenchRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	args := []string{"-duration", "500ms", "-conns", "4,2", "-warmup", "200ms", "-rounds", "2"}
	// servebench builds the daemon itself unless given one; without a
	// toolchain (the future-dated guest) it is given the prebuilt one.
	if os.Getenv(testbin.DirEnv) != "" {
		daemon, err := testbin.Build("", "timenoded", "")
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "-daemon", daemon)
	} else if _, err := exec.LookPath("go"); err != nil {
		t.Skip(testbin.ErrNoToolchain)
	}
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if left := children(t); len(left) > 0 {
		t.Errorf("processes left running after the benchmark (daemon, hello server): %v", left)
	}
	if n := strings.Count(out.String(), "keep-alive mTLS clients"); n != 2 {
		t.Errorf("%d tables, want one per -conns value (4,2):\n%s", n, out.String())
	}
	t.Logf("\n%s", out.String())
	rows := map[string][]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && (f[0] == "nonce-bound" || f[0] == "cached-snapshot" || f[0] == "hello-5k" || f[0] == "hello-ceiling") {
			rows[f[0]] = f
		}
	}
	if len(rows) != 4 {
		t.Fatalf("want 4 rows (nonce-bound, cached-snapshot, hello-5k, hello-ceiling), got %d:\n%s", len(rows), out.String())
	}
	for name, f := range rows {
		rate, err := strconv.ParseFloat(f[1], 64)
		if err != nil || rate <= 0 {
			t.Errorf("%s: req/s %q, want a positive number", name, f[1])
		}
		for _, col := range f[2:4] {
			ms, err := strconv.ParseFloat(strings.TrimSuffix(col, "ms"), 64)
			if err != nil || ms <= 0 {
				t.Errorf("%s: latency %q, want a positive duration", name, col)
			}
		}
		if f[4] != "0" {
			t.Errorf("%s: %s failed requests, want 0", name, f[4])
		}
	}
	if n, _ := strconv.Atoi(rows["nonce-bound"][5]); n < 1000 {
		t.Errorf("nonce-bound responses average %d bytes; an attestation with two signatures is larger", n)
	}
	if !strings.Contains(out.String(), "nonce-bound / ceiling = ") {
		t.Errorf("no ratio line:\n%s", out.String())
	}
}
