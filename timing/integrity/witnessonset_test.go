package integrity

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// dragHistory is three witnesses polled in turn every 64 s for span
// before now, each with its own path bias and 40 µs of jitter, measuring
// a node that GNSS drags at rate (ns/s) from onsetAgo before now.
func dragHistory(span, onsetAgo time.Duration, rate float64, seed uint64) []Measurement {
	return witnessHistory(span, seed, func(ago time.Duration) float64 {
		if ago < onsetAgo {
			return rate * (onsetAgo - ago).Seconds()
		}
		return 0
	})
}

// witnessHistory is dragHistory's witnesses measuring a node whose clock
// is nodeErr(ago) ns ahead of true time, ago before now.
func witnessHistory(span time.Duration, seed uint64, nodeErr func(ago time.Duration) float64) []Measurement {
	rng := rand.New(rand.NewPCG(seed, 1))
	bias := map[string]float64{"w1": -15e3, "w2": 19e3, "w3": -20e3}
	names := []string{"w1", "w2", "w3"}
	var hist []Measurement
	for i, ago := 0, span; ago > 0; i, ago = i+1, ago-64*time.Second/3 {
		w := names[i%3]
		off := -nodeErr(ago) + bias[w] + 40e3*rng.NormFloat64()
		hist = append(hist, Measurement{Witness: w, At: t0.Add(-ago), Offset: time.Duration(off), Uncertainty: 300 * time.Microsecond})
	}
	return hist
}

// TestWitnessOnset dates the drags of the integrity bench's witnesses-only
// runs from the witnesses' history: never after the true onset (a
// checkpoint after it carries the drag), and not much before it.
func TestWitnessOnset(t *testing.T) {
	all := map[string]bool{"w1": true, "w2": true, "w3": true}
	tests := []struct {
		name     string
		span     time.Duration
		onsetAgo time.Duration
		rate     float64
		in       map[string]bool
		sign     float64
		ok       bool
		lo, hi   time.Duration // the dated onset's age
	}{
		{name: "1 µs/s for 4 min", span: 2 * time.Hour, onsetAgo: 4 * time.Minute, rate: 1000, in: all, sign: -1, ok: true,
			lo: 4 * time.Minute, hi: 12 * time.Minute},
		{name: "100 ns/s for 33 min", span: 2 * time.Hour, onsetAgo: 33 * time.Minute, rate: 100, in: all, sign: -1, ok: true,
			lo: 33 * time.Minute, hi: 48 * time.Minute},
		{name: "a drag older than the history is extrapolated", span: 20 * time.Minute, onsetAgo: 33 * time.Minute, rate: 100, in: all, sign: -1, ok: true,
			lo: 33 * time.Minute, hi: 55 * time.Minute},
		{name: "a drag the other way from the disagreement", span: 2 * time.Hour, onsetAgo: 10 * time.Minute, rate: 1000, in: all, sign: 1},
		{name: "too few measurements", span: 90 * time.Second, onsetAgo: 60 * time.Second, rate: 1000, in: all, sign: -1},
		{name: "only the agreeing witnesses count", span: 2 * time.Hour, onsetAgo: 10 * time.Minute, rate: 1000, in: map[string]bool{"w9": true}, sign: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 20; seed++ {
				hist := dragHistory(tc.span, tc.onsetAgo, tc.rate, seed)
				age, ok := witnessOnset(t0, hist, tc.in, tc.sign)
				if ok != tc.ok {
					t.Fatalf("seed %d: ok %v, want %v (age %.0f s)", seed, ok, tc.ok, age)
				}
				if !ok {
					continue
				}
				if got := time.Duration(age * float64(time.Second)); got < tc.lo || got > tc.hi || math.IsNaN(age) {
					t.Errorf("seed %d: onset dated %v ago, want within [%v, %v]", seed, got, tc.lo, tc.hi)
				}
			}
		})
	}
}

// TestQuorumDisagreesDatesTheDrag: the evidence of a disagreeing quorum
// carries the onset its history dates, which the policy takes as the
// time since when GNSS is suspect.
func TestQuorumDisagreesDatesTheDrag(t *testing.T) {
	hist := dragHistory(2*time.Hour, time.Hour, 100, 7)
	res, evs := CheckWitnesses(t0, 20*time.Microsecond, hist, WitnessConfig{})
	if res.Verdict != WitnessDisagree || len(evs) != 1 {
		t.Fatalf("verdict %v, evidence %v; want disagree", res.Verdict, evs)
	}
	onsetS, ok := evs[0].Values["onset_s"]
	if !ok || onsetS < time.Hour.Seconds() || onsetS > (80*time.Minute).Seconds() {
		t.Fatalf("onset_s %v (present %v), want 60-80 min", onsetS, ok)
	}
	p := NewPolicy(PolicyConfig{}, t0.Add(-3*time.Hour))
	p.Observe(evs...)
	p.Evaluate(t0)
	if got, want := p.SuspectSince(), t0.Add(-time.Duration(onsetS)*time.Second); !got.Equal(want) {
		t.Errorf("SuspectSince %v, want %v", got, want)
	}
	// Only the latest measurement per witness is judged: a history
	// whose latest answers agree with the node raises nothing.
	clean := dragHistory(2*time.Hour, 0, 0, 7)
	if res, evs := CheckWitnesses(t0, 20*time.Microsecond, append(hist[:len(hist)-6:len(hist)-6], clean[len(clean)-3:]...), WitnessConfig{}); res.Verdict != WitnessAgree || len(evs) != 0 {
		t.Errorf("latest answers agree: verdict %v, evidence %v", res.Verdict, evs)
	}
}

// TestKeepWitnessHistory keeps WitnessHistory of measurements.
func TestKeepWitnessHistory(t *testing.T) {
	var hist []Measurement
	for s := 0; s <= 5*3600; s += 60 {
		at := t0.Add(time.Duration(s) * time.Second)
		hist = KeepWitnessHistory(hist, at, Measurement{Witness: "w", At: at})
	}
	last := hist[len(hist)-1].At
	if age := last.Sub(hist[0].At); age > WitnessHistory || age < WitnessHistory-time.Minute {
		t.Errorf("history spans %v, want %v", age, WitnessHistory)
	}
	if n := len(hist); n != 241 {
		t.Errorf("%d kept at one a minute, want all 241", n)
	}
}

// TestKeepWitnessHistoryThins: two witnesses polled every second keep one
// measurement per witnessSpacing each, and always their latest.
func TestKeepWitnessHistoryThins(t *testing.T) {
	var hist []Measurement
	for s := 0; s <= 5*3600; s++ {
		at := t0.Add(time.Duration(s) * time.Second)
		for _, w := range []string{"a", "b"} {
			hist = KeepWitnessHistory(hist, at, Measurement{Witness: w, At: at, Offset: time.Duration(s)})
		}
	}
	end := t0.Add(5 * time.Hour)
	want := 2 * (int(WitnessHistory/witnessSpacing) + 1)
	if n := len(hist); n < want-2 || n > want+2 {
		t.Errorf("kept %d, want about %d", n, want)
	}
	latest := map[string]time.Time{}
	prev := map[string]time.Time{}
	for i, m := range hist {
		if i > 0 && m.At.Before(hist[i-1].At) {
			t.Fatalf("out of time order at %d: %v after %v", i, m.At, hist[i-1].At)
		}
		if p, ok := prev[m.Witness]; ok && m.At.Sub(p) < witnessSpacing && m.At != end {
			t.Errorf("%s kept %v and %v, closer than %v", m.Witness, p, m.At, witnessSpacing)
		}
		prev[m.Witness], latest[m.Witness] = m.At, m.At
	}
	if !latest["a"].Equal(end) || !latest["b"].Equal(end) {
		t.Errorf("latest kept %v, want both at %v", latest, end)
	}
}

// BenchmarkCheckWitnessesDisagreeing is one quorum verdict with its
// dating, on the history three witnesses leave after 4 h: polled every
// 64 s, every second as KeepWitnessHistory thins it, and every second
// unthinned (what the guard held before the thinning).
func BenchmarkCheckWitnessesDisagreeing(b *testing.B) {
	build := func(poll time.Duration, thin bool) []Measurement {
		var hist []Measurement
		names := []string{"w1", "w2", "w3"}
		for ago := WitnessHistory; ago > 0; ago -= poll {
			at := t0.Add(-ago)
			for i, w := range names {
				// A 1 µs/s drag for the last 10 min, past the witnesses'
				// 300 µs uncertainty.
				off := float64(i-1)*15e3 - 1000*max(0, (10*time.Minute-ago).Seconds())
				m := Measurement{Witness: w, At: at, Offset: time.Duration(off), Uncertainty: 300 * time.Microsecond}
				if thin {
					hist = KeepWitnessHistory(hist, at, m)
				} else {
					hist = append(hist, m)
				}
			}
		}
		return hist
	}
	for _, c := range []struct {
		name string
		poll time.Duration
		thin bool
	}{{"poll=64s", 64 * time.Second, true}, {"poll=1s/thinned", time.Second, true}, {"poll=1s/unthinned", time.Second, false}} {
		hist := build(c.poll, c.thin)
		b.Run(c.name, func(b *testing.B) {
			b.ReportMetric(float64(len(hist)), "measurements")
			for b.Loop() {
				if res, _ := CheckWitnesses(t0, 20*time.Microsecond, hist, WitnessConfig{}); res.Verdict != WitnessDisagree {
					b.Fatalf("verdict %v", res.Verdict)
				}
			}
		})
	}
	// The baseline: the hinges of the 64 s history fitted one by one, as
	// the dating did before hingeScan (quadratic in the history).
	hist := build(64*time.Second, true)
	ps := make([]fitPoint, len(hist))
	for i, m := range hist {
		ps[i] = fitPoint{t: m.At.Sub(t0).Seconds(), y: float64(m.Offset), g: int(m.Witness[1] - '1')}
	}
	slices.SortFunc(ps, func(a, b fitPoint) int { return cmp.Compare(a.t, b.t) })
	b.Run("poll=64s/hinges/direct", func(b *testing.B) {
		f := newSlopeFitter(3)
		for b.Loop() {
			for _, p := range ps {
				f.fit(ps, p.t)
			}
		}
	})
	b.Run("poll=64s/hinges/scan", func(b *testing.B) {
		for b.Loop() {
			hingeScan(ps, 3, func(int, float64, float64, float64) {})
		}
	})
}

// TestHingeScanMatchesTheFit: the suffix-sum scan gives every hinge the
// rate, residual and spread that the direct fit gives it.
func TestHingeScanMatchesTheFit(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		hist := dragHistory(3*time.Hour, 40*time.Minute, 100, seed)
		ps := make([]fitPoint, len(hist))
		for i, m := range hist {
			ps[i] = fitPoint{t: m.At.Sub(t0).Seconds(), y: float64(m.Offset), g: int(m.Witness[1] - '1')}
		}
		f := newSlopeFitter(3)
		visited := 0
		hingeScan(ps, 3, func(i int, rate, sse, sxx float64) {
			visited++
			wr, wsse, wsxx := f.fit(ps, ps[i].t)
			if wsxx == 0 {
				if sxx > 1e-6*float64(len(ps)) {
					t.Fatalf("seed %d, hinge %d: sxx %g where the fit has none", seed, i, sxx)
				}
				return
			}
			near := func(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(math.Abs(b), 1) }
			if !near(rate, wr, 1e-6) || !near(sxx, wsxx, 1e-6) || !near(sse, wsse, 1e-6) {
				t.Fatalf("seed %d, hinge %d: scan (%g, %g, %g), fit (%g, %g, %g)", seed, i, rate, sse, sxx, wr, wsse, wsxx)
			}
		})
		if visited != len(ps) {
			t.Fatalf("visited %d of %d hinges", visited, len(ps))
		}
	}
}
