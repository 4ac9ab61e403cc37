package main

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
	var out, errOut bytes.Buffer
	if code := run([]string{"-duration", "500ms", "-conns", "4", "-warmup", "200ms", "-rounds", "2"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
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
