package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(envServe); spec != "" {
		os.Exit(serveMain(spec))
	}
	os.Exit(m.Run())
}

var rowRE = regexp.MustCompile(`(?m)^(timenode|chronyd)\b.*?\s(\d+)\s+\S+\s+\S+\s+(\d+)$`)

// TestBenchRuns runs the whole benchmark briefly: both servers must answer
// the generator, every request in flight must be answered, and chronyd
// must be gone afterwards.
func TestBenchRuns(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantRows  int
		needChron bool
	}{
		{"ours only", []string{"-skip-chrony", "-warmup", "100ms", "-duration", "400ms", "-inflight", "16", "-rounds", "1"}, 1, false},
		{"ours and chronyd", []string{"-warmup", "100ms", "-duration", "400ms", "-inflight", "16", "-rounds", "1"}, 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needChron {
				if _, err := exec.LookPath("chronyd"); err != nil {
					if os.Getenv("CI") == "true" {
						t.Fatal("chronyd not found: install the Debian package chrony")
					}
					t.Skip("chronyd not found: install the Debian package chrony")
				}
			}
			var out bytes.Buffer
			if code := run(tc.args, &out); code != 0 {
				t.Fatalf("run exit %d; output:\n%s", code, out.String())
			}
			rows := rowRE.FindAllStringSubmatch(out.String(), -1)
			if len(rows) != tc.wantRows {
				t.Fatalf("%d result rows, want %d; output:\n%s", len(rows), tc.wantRows, out.String())
			}
			for _, r := range rows {
				rate, _ := strconv.Atoi(r[2])
				if rate < 1000 {
					t.Errorf("%s: %d replies/s, want at least 1000; output:\n%s", r[1], rate, out.String())
				}
			}
			if tc.needChron && !regexp.MustCompile(`ratio timenode/chronyd: replies/s [0-9.]+x`).MatchString(out.String()) {
				t.Errorf("no ratio line in output:\n%s", out.String())
			}
			if pids := benchChronyds(t); len(pids) != 0 {
				t.Errorf("chronyd still running after the bench: pids %v", pids)
			}
			t.Logf("\n%s", out.String())
		})
	}
}

// benchChronyds lists processes whose command line names a configuration
// in one of the bench's temporary directories.
func benchChronyds(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err == nil && bytes.Contains(b, []byte("ntpbench-chrony-")) {
			pids = append(pids, filepath.Base(filepath.Dir(d)))
		}
	}
	return pids
}
