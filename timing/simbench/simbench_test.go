package simbench

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// short returns scenario idx cut to durationS seconds with a holdover probe
// of holdS seconds at the end (none if 0).
func short(idx, durationS, holdS int) Scenario {
	sc := Scenarios()[idx]
	sc.DurationS, sc.SettleS, sc.Outages = durationS, 600, nil
	if holdS > 0 {
		sc.Outages = []Outage{{StartS: durationS - holdS, DurationS: holdS}}
	}
	return sc
}

func TestConvergenceAndCoverage(t *testing.T) {
	tests := []struct {
		name    string
		sc      Scenario
		kind    Kind
		maxRMS  float64 // ns
		maxLock int     // s
	}{
		{"(a) ours", short(0, 3600, 600), Ours, 120, 10},
		{"(a) PI", short(0, 3600, 600), PI, 1500, 60},
		{"(b) ours", short(1, 3600, 600), Ours, 250, 10},
		{"(c) ours", short(2, 3600, 600), Ours, 900, 120},
		// 50 µs noise: an hour is short for the long averaging it needs.
		{"(e) ours", short(4, 3600, 600), Ours, 5000, -1},
		{"(e) PI", short(4, 3600, 600), PI, 60e3, -1},
		// The robust start holds 200 ppm for its 7 samples, 1.4 ms to
		// slew out afterwards.
		{"(f) ours", short(5, 3600, 600), Ours, 150, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := Run(tt.sc, tt.kind)
			if r.RMSNs > tt.maxRMS {
				t.Errorf("steady-state RMS %.0f ns, want ≤ %.0f ns", r.RMSNs, tt.maxRMS)
			}
			if tt.maxLock >= 0 && (r.LockS < 0 || r.LockS > tt.maxLock) {
				t.Errorf("time to lock %d s, want within %d s", r.LockS, tt.maxLock)
			}
			if r.Coverage < 0.999 {
				t.Errorf("bound coverage %.3f %%, want ≥ 99.9 %%", 100*r.Coverage)
			}
			if r.MedianRate > 100 {
				t.Errorf("median bound/error %.0f, want ≤ 100", r.MedianRate)
			}
		})
	}
}

func TestBeatsBaselineWithSpikes(t *testing.T) {
	sc := short(2, 3600, 0)
	ours, _ := Run(sc, Ours)
	pi, _ := Run(sc, PI)
	oracle, _ := Run(sc, Oracle)
	if ours.RMSNs*2 > pi.RMSNs {
		t.Errorf("ours %.0f ns RMS vs PI %.0f ns: not 2× better", ours.RMSNs, pi.RMSNs)
	}
	if ours.RMSNs > 1.5*oracle.RMSNs {
		t.Errorf("ours %.0f ns RMS vs oracle %.0f ns: more than 1.5× worse", ours.RMSNs, oracle.RMSNs)
	}
	if ours.Missed > 0 {
		t.Errorf("%d spikes accepted", ours.Missed)
	}
}

func TestLockFrom200ppm(t *testing.T) {
	if got := LockSweep(Ours); got < 0 || got > 60 {
		t.Errorf("worst time to lock from ±200 ppm %d s, want ≤ 60 s", got)
	}
}

func TestOutageAndReacquisition(t *testing.T) {
	sc := Scenarios()[3]
	sc.DurationS = 2 * 3600
	sc.Outages = []Outage{{StartS: 2400, DurationS: 1800}}
	r, tr := Run(sc, Ours)
	if r.RelockS < 0 || r.RelockS > 30 {
		t.Errorf("re-lock after the outage took %d s, want ≤ 30 s", r.RelockS)
	}
	cov, _ := Coverage(tr, 2400, 4200)
	if cov < 0.999 {
		t.Errorf("coverage during the outage %.3f %%, want ≥ 99.9 %%", 100*cov)
	}
	if math.IsNaN(r.Hold10mNs) || r.Hold10mNs > 5e3 {
		t.Errorf("holdover error after 10 min %.0f ns, want ≤ 5 µs", r.Hold10mNs)
	}
}

func TestDeterministic(t *testing.T) {
	sc := short(2, 900, 0)
	a, _ := Run(sc, Ours)
	b, _ := Run(sc, Ours)
	if fmt.Sprintf("%v", a) != fmt.Sprintf("%v", b) {
		t.Errorf("two runs with the same seed differ:\n%+v\n%+v", a, b)
	}
}

func TestUpdateDoc(t *testing.T) {
	path := filepath.Join(t.TempDir(), "TIMING.md")
	doc := "intro\n" + BeginMarker + "\nold table\n" + EndMarker + "\noutro\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateDoc(path, []byte("new table\n")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "intro\n" + BeginMarker + "\nnew table\n" + EndMarker + "\noutro\n"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := os.WriteFile(path, []byte("no markers"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateDoc(path, nil); err == nil {
		t.Error("no error for a file without markers")
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	sc := short(0, 900, 0)
	r, _ := Run(sc, Ours)
	WriteTable(&buf, sc, []Result{r})
	out := buf.String()
	for _, want := range []string{"### (a)", "| kalman (ours) |", "%"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
