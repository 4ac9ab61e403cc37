package simbench

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestSeedScenario(t *testing.T) {
	sc := Scenarios()[0]
	tests := []struct {
		i        int
		freq     float64 // 0: anything within ±200 ppm
		steppedP bool
	}{
		{0, 200e3, true}, {1, -200e3, false}, {2, 0, true}, {3, 0, false}, {4, 200e3, true}, {97, -200e3, false},
	}
	for _, tt := range tests {
		s := SeedScenario(sc, tt.i)
		if s.Seed != RobustFirstSeed+uint64(tt.i) {
			t.Errorf("seed index %d: noise seed %d", tt.i, s.Seed)
		}
		f := s.Osc.InitFreqPPB
		if (tt.freq != 0 && f != tt.freq) || math.Abs(f) > 200e3 {
			t.Errorf("seed index %d: initial frequency %g ppb", tt.i, f)
		}
		stepped := math.Abs(s.InitPhaseNs) >= 0.2e9 && math.Abs(s.InitPhaseNs) <= 0.5e9
		slewed := math.Abs(s.InitPhaseNs) <= 1e6
		if stepped != tt.steppedP || stepped == slewed {
			t.Errorf("seed index %d: initial phase %g ns, stepped start %v", tt.i, s.InitPhaseNs, tt.steppedP)
		}
		if again := SeedScenario(sc, tt.i); again.InitPhaseNs != s.InitPhaseNs || again.Osc != s.Osc {
			t.Errorf("seed index %d: not reproducible", tt.i)
		}
	}
}

// TestRobustSweep: a small sweep (the 100-seed one is `make bench-timing`
// only) gives the same figures on one worker or several, and the oracle's
// ratio to itself is 1.
func TestRobustSweep(t *testing.T) {
	sc := short(2, 900, 0)
	sc.SettleS = 300
	kinds := []Kind{Ours, Oracle}
	one := RobustSweep(sc, kinds, 3, 1)
	many := RobustSweep(sc, kinds, 3, 3)
	for j := range kinds {
		if fmt.Sprint(one[j]) != fmt.Sprint(many[j]) { // NaN ≠ NaN: compare as printed
			t.Errorf("%s: 1 worker %+v, 3 workers %+v", kinds[j], one[j], many[j])
		}
	}
	or := one[1]
	if or.Seeds != 3 || or.RatioMedian != 1 || or.RatioWorst != 1 {
		t.Errorf("oracle stats %+v, want 3 seeds and ratio 1", or)
	}
	if o := one[0]; o.RMSMedian <= 0 || o.RMSWorst < o.RMSMedian || (o.LockWorst >= 0 && o.LockWorst < o.LockMedian) {
		t.Errorf("inconsistent stats %+v", o)
	}
	if or.SwitchesMedian != 0 {
		t.Errorf("oracle switched filters %d times; it has one", or.SwitchesMedian)
	}
	var buf bytes.Buffer
	WriteRobustness(&buf, nil, 3, 1)
	if !strings.Contains(buf.String(), "over 3 seeds") {
		t.Errorf("robustness header missing:\n%s", buf.String())
	}
}
