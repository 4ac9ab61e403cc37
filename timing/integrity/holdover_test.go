package integrity

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestHoldoverCheck: the median of 7 edges against the node's bound;
// latency spikes do not count, a gap in the edges starts the median
// afresh, and the comparison is usable for holdoverFresh.
func TestHoldoverCheck(t *testing.T) {
	const bound = 20 * time.Microsecond
	tests := []struct {
		name      string
		offsets   []float64 // ns, one edge per second
		bound     time.Duration
		wantEv    bool          // the last edge reports holdover_disagrees
		wantGNSS  time.Duration // GNSSBound after the last edge (0: none)
		gapBefore int           // seconds of no edges before the last 3
	}{
		{"agrees", []float64{1e3, -2e3, 3e3, 0, 1e3, 2e3, -1e3}, bound, false, 21 * time.Microsecond, 0},
		{"too few edges yet", []float64{50e3, 50e3, 50e3, 50e3, 50e3, 50e3}, bound, false, 0, 0},
		{"late by more than the bound", []float64{50e3, 51e3, 49e3, 50e3, 52e3, 48e3, 50e3}, bound, true, 70 * time.Microsecond, 0},
		{"early by more than the bound", []float64{-30e3, -30e3, -30e3, -30e3, -30e3, -30e3, -30e3}, bound, true, 50 * time.Microsecond, 0},
		{"three latency spikes in seven", []float64{0, 900e3, 0, 600e3, 0, 0, 300e3}, bound, false, 20 * time.Microsecond, 0},
		{"a gap starts the median afresh", []float64{50e3, 50e3, 50e3, 50e3, 50e3, 50e3, 50e3, 50e3, 50e3}, bound, false, 0, 30},
		{"no bound yet", []float64{50e3, 50e3, 50e3, 50e3, 50e3, 50e3, 50e3}, time.Duration(math.MaxInt64), false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHoldoverCheck()
			now := t0
			var evs []Evidence
			for i, off := range tt.offsets {
				now = now.Add(time.Second)
				if tt.gapBefore > 0 && i == len(tt.offsets)-3 {
					now = now.Add(time.Duration(tt.gapBefore) * time.Second)
				}
				evs = h.Observe(now, off, tt.bound)
			}
			if got := len(evs) == 1 && evs[0].Reason == ReasonHoldoverDisagrees && evs[0].Level == LevelUntrusted; got != tt.wantEv || len(evs) > 1 {
				t.Fatalf("evidence %v, want holdover_disagrees %v", evs, tt.wantEv)
			}
			if tt.wantEv {
				// Its time error is GNSS's largest: |offset| + bound.
				if d, ok := evs[0].TimeError(); !ok || d != tt.wantGNSS {
					t.Errorf("time error %v %v, want %v", d, ok, tt.wantGNSS)
				}
			}
			d, ok := h.GNSSBound(now)
			if ok != (tt.wantGNSS > 0) || d != tt.wantGNSS {
				t.Fatalf("GNSSBound %v %v, want %v", d, ok, tt.wantGNSS)
			}
			if _, ok := h.GNSSBound(now.Add(holdoverFresh + time.Second)); ok {
				t.Error("a comparison older than holdoverFresh still usable")
			}
			h.Reset()
			if _, ok := h.GNSSBound(now); ok {
				t.Error("a comparison usable after Reset")
			}
		})
	}
}

// TestPolicySuspectSince: the time the discipline holds over from is the
// earliest onset the evidence measured, or when the node left trusted if
// it was suspect first; the GNSS comparison becomes the residual only if
// it is fresh when the node leaves untrusted.
func TestPolicySuspectSince(t *testing.T) {
	pps := func(at time.Time, onset float64) Evidence {
		return Evidence{At: at, Detector: DetectorPPS, Reason: ReasonFrequencyChange, Level: LevelUntrusted,
			Values: map[string]float64{"onset_s": onset}}
	}
	pos := func(at time.Time) Evidence {
		return Evidence{At: at, Detector: DetectorPosition, Reason: ReasonPositionJump, Level: LevelUntrusted}
	}
	cn0 := func(at time.Time) Evidence {
		return Evidence{At: at, Detector: DetectorReceiver, Reason: ReasonCN0Uniform, Level: LevelSuspect}
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		evs  func(s int) []Evidence // reported at second s
		want time.Time
	}{
		{"PPS alarm: its clean line's end", func(s int) []Evidence {
			if s == 100 {
				return []Evidence{pps(at(s), 40)}
			}
			return nil
		}, at(60)},
		{"position: the evidence's time", func(s int) []Evidence {
			if s == 100 {
				return []Evidence{pos(at(s))}
			}
			return nil
		}, at(100)},
		{"suspect first: when the node left trusted", func(s int) []Evidence {
			switch {
			case s >= 50 && s < 100:
				return []Evidence{cn0(at(s))}
			case s == 100:
				return []Evidence{cn0(at(s)), pps(at(s), 16)}
			}
			return nil
		}, at(50)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPolicy(PolicyConfig{}, t0)
			if !p.SuspectSince().IsZero() {
				t.Fatal("suspect since set before any evidence")
			}
			for s := 0; s <= 100; s++ {
				p.Observe(tt.evs(s)...)
				p.Evaluate(at(s))
			}
			if st, _ := p.State(); st != StateUntrusted || !p.SuspectSince().Equal(tt.want) {
				t.Fatalf("%v, suspect since %v; want untrusted since %v", st, p.SuspectSince(), tt.want)
			}
		})
	}

	// The GNSS comparison at the release: fresh, it is the residual;
	// stale, it is not.
	for _, stale := range []bool{false, true} {
		p := NewPolicy(PolicyConfig{HoldOff: time.Minute}, t0)
		p.Observe(pos(at(1)))
		p.Evaluate(at(1))
		release := 1 + 10 + 60 // evidence active 10 s, then the hold-off
		for s := 2; s <= release+1; s++ {
			if !stale || s < release-30 {
				p.MeasureGNSS(at(s), 42*time.Microsecond, 0)
			}
			p.Evaluate(at(s))
		}
		want := 42 * time.Microsecond
		if stale {
			want = 0
		}
		if st, _ := p.State(); st != StateSuspect || p.Residual() != want {
			t.Errorf("stale %v: %v, residual %v; want suspect, residual %v", stale, st, p.Residual(), want)
		}
	}
}

// TestHoldoverDrift: how fast GNSS moves against the held-over clock,
// from a minute's comparison over the last half hour: the slope of the
// medians three standard errors wider, plus the growth of the node's own
// bound. Over 50 seeds it is at least the true rate in 47 or more, and
// its median is not far above it.
func TestHoldoverDrift(t *testing.T) {
	tests := []struct {
		name        string
		seconds     int
		rate        float64 // GNSS against the held-over clock, ns/s
		boundGrowth float64 // the node's bound, ns/s
		noise       float64 // ns per edge
		ok          bool
		maxMedian   float64 // ns/s
	}{
		{name: "a steady GNSS", seconds: 3600, noise: 1e3, ok: true, maxMedian: 1},
		{name: "a 10 ns/s drag", seconds: 3600, rate: 10, noise: 1e3, ok: true, maxMedian: 11},
		{name: "a drag back", seconds: 3600, rate: -30, noise: 1e3, ok: true, maxMedian: 31},
		{name: "the node's bound grows too", seconds: 3600, rate: 10, boundGrowth: 12, noise: 1e3, ok: true, maxMedian: 23},
		{name: "GPIO noise", seconds: 3600, rate: 10, noise: 10e3, ok: true, maxMedian: 16},
		{name: "under ten minutes of comparisons", seconds: 500, rate: 10, noise: 1e3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const seeds = 50
			var ds []float64
			covered := 0
			for seed := uint64(1); seed <= seeds; seed++ {
				h := NewHoldoverCheck()
				rng := rand.New(rand.NewPCG(seed, 1))
				var now time.Time
				for s := 1; s <= tt.seconds; s++ {
					now = t0.Add(time.Duration(s) * time.Second)
					bound := time.Duration(1e6 + tt.boundGrowth*float64(s))
					h.Observe(now, 50e3+tt.rate*float64(s)+tt.noise*rng.NormFloat64(), bound)
				}
				d, ok := h.Drift(now)
				if ok != tt.ok {
					t.Fatalf("seed %d: ok %v, want %v", seed, ok, tt.ok)
				}
				if _, ok := h.Drift(now.Add(holdoverFresh + time.Second)); ok {
					t.Fatal("a stale comparison still gives a drift")
				}
				if h.Reset(); tt.ok {
					if _, ok := h.Drift(now); ok {
						t.Fatal("Reset kept the drift")
					}
				}
				if !tt.ok {
					return
				}
				ds = append(ds, d)
				if d >= math.Abs(tt.rate)+tt.boundGrowth {
					covered++
				}
			}
			m := median(ds)
			t.Logf("at least the true rate in %d of %d seeds, median %.2f ns/s", covered, seeds, m)
			if covered < 47 || m > tt.maxMedian {
				t.Errorf("at least the true %.0f ns/s in %d of %d seeds, median %.2f; want 47 or more, median at most %.0f",
					math.Abs(tt.rate)+tt.boundGrowth, covered, seeds, m, tt.maxMedian)
			}
		})
	}
}

// TestPolicyWideningGrowsByTheDrift: released with a drift measured, the
// suspect widening grows by it; untrusted again, the node keeps what it
// grew to as its residual and measures afresh; a restart keeps the
// growth going.
func TestPolicyWideningGrowsByTheDrift(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	p := NewPolicy(PolicyConfig{HoldOff: time.Minute}, t0)
	pos := Evidence{At: at(1), Detector: DetectorPosition, Reason: ReasonPositionJump, Level: LevelUntrusted}
	p.Observe(pos)
	p.Evaluate(at(1))
	release := 1 + 10 + 60
	for s := 2; s <= release; s++ {
		p.MeasureGNSS(at(s), 300*time.Microsecond, 20)
		p.Evaluate(at(s))
	}
	if st, _ := p.State(); st != StateSuspect || p.Drift() != 20 {
		t.Fatalf("after the hold-off: %v, drift %v; want suspect, 20 ns/s", st, p.Drift())
	}
	// 300 µs, then 20 ns/s from the release, a second ahead.
	for _, tc := range []struct {
		s    int
		want time.Duration
	}{{release, 300*time.Microsecond + 20*time.Nanosecond}, {release + 3600, 300*time.Microsecond + 72020*time.Nanosecond}} {
		if got := p.Widening(at(tc.s)); got != tc.want {
			t.Errorf("widening %v after the release: %v, want %v", time.Duration(tc.s-release)*time.Second, got, tc.want)
		}
	}
	m := p.Memory(at(release + 3600))
	q := NewPolicy(PolicyConfig{HoldOff: time.Minute}, at(release+3700))
	if _, err := q.Restore(m, at(release+3700)); err != nil {
		t.Fatal(err)
	}
	if got, want := q.Widening(at(release+3700)), 300*time.Microsecond+74020*time.Nanosecond; got != want {
		t.Errorf("restarted: widening %v, want %v (the growth goes on)", got, want)
	}
	pos.At = at(release + 7200)
	p.Observe(pos)
	p.Evaluate(at(release + 7200))
	if st, _ := p.State(); st != StateUntrusted || p.Drift() != 0 || p.Residual() != 300*time.Microsecond+144*time.Microsecond {
		t.Errorf("untrusted again: %v, drift %v, residual %v; want untrusted, 0, 444µs", st, p.Drift(), p.Residual())
	}
}
