package bound

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// walkIntegral is ∫∫ min(s, t, h) ds dt over [0, dt]² by the midpoint
// rule, written as 2∫₀^dt ∫₀^t min(s, h) ds dt: an independent form of
// walkVar's closed form.
func walkIntegral(dt, h float64) float64 {
	const n = 20000
	step, sum := dt/n, 0.0
	for i := range n {
		t := (float64(i) + 0.5) * step
		inner := t * t / 2
		if t > h {
			inner = h*h/2 + h*(t-h)
		}
		sum += 2 * inner * step
	}
	return sum
}

func TestWalkVar(t *testing.T) {
	const q = 3e-3
	plain := func(dt float64) float64 { return q * dt * dt * dt / 3 }
	limit := walkLimit{capVar: 6.25, spanS: 40000} // h = 2083 s
	h := limit.capVar / q
	tests := []struct {
		name string
		l    walkLimit
		dt   float64
		want float64
	}{
		{"no limit", walkLimit{}, 30000, plain(30000)},
		{"before the walk reaches the cap", limit, h / 2, plain(h / 2)},
		{"at the cap", limit, h, plain(h)},
		{"past the cap, within the span", limit, 30000, q * walkIntegral(30000, h)},
		{"past the span the walk resumes", limit, 50000, q * (walkIntegral(50000, h) + 10000*10000*10000/3.0)},
		{"a cap the walk reaches only after the span", walkLimit{capVar: 200, spanS: 40000}, 50000, plain(50000)},
		{"a tiny cap waits for LongHorizon", walkLimit{capVar: 1e-6, spanS: 40000}, LongHorizon, plain(LongHorizon)},
		{"no walk", limit, 30000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qrw := q
			if tt.name == "no walk" {
				qrw = 0
			}
			if got := tt.l.walkVar(qrw, tt.dt); math.Abs(got-tt.want) > 1e-4*tt.want+1e-12 {
				t.Errorf("walkVar(%g, %g) = %.6g, want %.6g", qrw, tt.dt, got, tt.want)
			}
		})
	}
	// The limit only ever takes variance away, and the bound it gives
	// never shrinks as the horizon grows.
	prev := 0.0
	for dt := 1.0; dt < 2e5; dt *= 1.1 {
		v := limit.walkVar(q, dt)
		if v > plain(dt)*(1+1e-12) || v < prev {
			t.Fatalf("at %.0f s: %.6g (plain %.6g, before %.6g)", dt, v, plain(dt), prev)
		}
		prev = v
	}
}

// cycle is a free-running phase (ns) whose frequency follows a
// temperature cycle of ±amp ppb with period p seconds, plus a constant
// offset of base ppb: the integral of base + amp·sin(2πt/p).
func cycle(base, amp, p, t float64) float64 {
	w := 2 * math.Pi / p
	return base*t + amp*(1-math.Cos(w*t))/w
}

func TestWanderHistory(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	var w wander
	const hours = 12
	for k := range hours * 3600 {
		w.add(int64(k)*1e9, cycle(2500, 5, 4*3600, float64(k))+1e3*rng.NormFloat64())
	}
	if n := len(w.blocks); n != hours*3600/(wanderBlockS+1) {
		t.Errorf("%d blocks in %d h, want one per %d s", n, hours, wanderBlockS+1)
	}
	for i, b := range w.blocks {
		// The block's mean frequency, from its ends' true phases.
		s, e := float64(b.startNs)/1e9, float64(b.endNs)/1e9
		want := (cycle(2500, 5, 4*3600, e) - cycle(2500, 5, 4*3600, s)) / (e - s)
		if math.Abs(b.freqPPB-want) > 0.5 {
			t.Errorf("block %d: %.2f ppb, mean frequency %.2f", i, b.freqPPB, want)
		}
	}
	r, span, ok := w.limit()
	if !ok || r < wanderMargin*9.5 || r > wanderMargin*10.8 || span < hours*3600-wanderBlockS || span > hours*3600 {
		t.Errorf("limit: range %.2f ppb over %.0f s (ok %v), want %.1f times the 10 ppb swing over about %d h", r, span, ok, wanderMargin, hours)
	}

	// A snapshot keeps its blocks when the history is rewound and
	// grows again.
	snap := FrequencyHistory{blocks: w.blocks[:len(w.blocks):len(w.blocks)], lastNs: w.lastNs}
	before := snap.Blocks()
	w.rewind(w.blocks[9].endNs)
	if len(w.blocks) != 10 || w.n != 0 {
		t.Fatalf("rewound to block 9's end: %d blocks, %d samples under way; want 10 and none", len(w.blocks), w.n)
	}
	for k := range 2 * wanderBlockS {
		w.add(int64(hours*3600+k)*1e9, 0)
	}
	if got := snap.Blocks(); len(got) != len(before) || got[len(got)-1] != before[len(before)-1] || got[10] != before[10] {
		t.Errorf("a snapshot changed after the rewind")
	}
	if _, _, ok := w.limit(); !ok {
		t.Error("rewound to 10 blocks and grown by one: no limit")
	}
	if w.rewind(w.blocks[2].endNs); len(w.blocks) != 3 {
		t.Fatalf("rewound to block 2's end: %d blocks, want 3", len(w.blocks))
	}
	if r, span, ok := w.limit(); ok {
		t.Errorf("3 blocks left: limit %.2f ppb over %.0f s, want none", r, span)
	}
}

func TestWanderHistoryGapsAndAge(t *testing.T) {
	tests := []struct {
		name   string
		stepS  int   // seconds between samples
		gapAtS int   // gapS seconds without samples start here
		gapS   int   // (0: none)
		totalS int   // seconds fed
		blocks int   // blocks kept
		oldest int64 // the oldest block starts at or after (s)
	}{
		{"every second", 1, 0, 0, 3 * wanderBlockS, 2, 0},
		{"every third second", 3, 0, 0, 3 * 1536, 3, 0},
		{"too sparse to fit", 5, 0, 0, 10 * wanderBlockS, 0, 0},
		{"61 s between samples drops the block under way", 1, 500, 60, 3 * wanderBlockS, 2, 560},
		{"60 s does not", 1, 500, 59, 3 * wanderBlockS, 2, 0},
		{"48 h kept of 50", 1, 0, 0, 50 * 3600, wanderHistoryS / (wanderBlockS + 1), 3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w wander
			for k := 0; k < tt.totalS; k += tt.stepS {
				if tt.gapS > 0 && k >= tt.gapAtS && k < tt.gapAtS+tt.gapS {
					continue
				}
				w.add(int64(k)*1e9, 5*float64(k))
			}
			if len(w.blocks) != tt.blocks {
				t.Fatalf("%d blocks, want %d", len(w.blocks), tt.blocks)
			}
			for _, b := range w.blocks {
				if math.Abs(b.freqPPB-5) > 1e-6 {
					t.Errorf("block at %d s: %.9f ppb, want 5", b.startNs/1e9, b.freqPPB)
				}
			}
			if n := len(w.blocks); n > 0 && (w.blocks[0].startNs < tt.oldest*1e9 || w.blocks[n-1].endNs-w.blocks[0].startNs > wanderHistoryS*1e9) {
				t.Errorf("blocks from %d s to %d s, want from %d s on and within %d s", w.blocks[0].startNs/1e9, w.blocks[n-1].endNs/1e9, tt.oldest, wanderHistoryS)
			}
		})
	}
}

// feedCycle feeds e hours of a free-running clock (no corrections)
// under a ±5 ppb, 4 h temperature cycle and 1 µs timestamps, and returns
// the last sample's local time.
func feedCycle(e *Estimator, hours int, seed uint64) int64 {
	rng := rand.New(rand.NewPCG(seed, 9))
	var last int64
	for k := range hours * 3600 {
		last = int64(k) * 1e9
		e.AddSample(last, cycle(0, 5, 4*3600, float64(k))+1e3*rng.NormFloat64(), 0)
	}
	return last
}

// TestFrequencyHistoryLimitsTheHoldoverBound: a model whose random walk
// fits a temperature cycle over hours (3·10⁻³ ppb²/s, as the timing
// bench's TCXO without a temperature input was left with) grows the
// bound by its walk for a holdover's first minutes; once the walk has
// reached the swing the history shows, by that swing alone. Every
// locked second's bound is unchanged, the bound still covers what the
// cycle does to a held frequency, and with too short a history nothing
// is limited.
func TestFrequencyHistoryLimitsTheHoldoverBound(t *testing.T) {
	const q = 3e-3
	for _, hours := range []int{12, 2} {
		e := NewEstimator(DefaultConfig())
		last := feedCycle(e, hours, 1)
		end := float64(last) / 1e9
		// The prediction holds the frequency of the last second, as a
		// filter that tracks the cycle does.
		held := cycle(0, 5, 4*3600, end+1) - cycle(0, 5, 4*3600, end)
		p := Prediction{PhaseNs: cycle(0, 5, 4*3600, end), FreqPPB: held, Pxx: 1e5, Pyy: 1e-3, Qrw: q}
		e.SetPredictions([]Prediction{p})
		for _, dt := range []float64{1, LongHorizon, 600, 3600, 6 * 3600, 10 * 3600} {
			got, ok := e.predBound(last + int64(dt*1e9))
			x, v := p.project(dt, 0, walkLimit{})
			unlimited := math.Abs(x) + 4*math.Sqrt(v)
			truth := math.Abs(cycle(0, 5, 4*3600, end+dt))
			switch {
			case !ok:
				t.Fatalf("%d h of history, %.0f s on: no bound from the prediction", hours, dt)
			case got > unlimited*(1+1e-9):
				t.Errorf("%d h of history, %.0f s on: %.0f ns, more than the unlimited %.0f", hours, dt, got, unlimited)
			case got < truth:
				t.Errorf("%d h of history, %.0f s on: %.0f ns does not cover the cycle's %.0f", hours, dt, got, truth)
			case (hours == 2 || dt <= 600) && got < unlimited*(1-1e-9):
				t.Errorf("%d h of history, %.0f s on: %.0f ns, want the unlimited %.0f", hours, dt, got, unlimited)
			case hours == 12 && dt >= 6*3600 && got > 0.8*unlimited:
				t.Errorf("%d h of history, %.0f s on: %.0f ns, want well under the unlimited %.0f", hours, dt, got, unlimited)
			}
		}
	}
}

// TestSeedFrequencyHistory: a history kept as blocks and seeded into a
// new estimator limits its bound as the old one's did, from the first
// sample; a history that does not validate, or comes after the first
// sample, is refused.
func TestSeedFrequencyHistory(t *testing.T) {
	old := NewEstimator(DefaultConfig())
	feedCycle(old, 12, 2)
	kept := old.FrequencyHistory().Blocks()
	if len(kept) < 40 {
		t.Fatalf("%d blocks kept of 12 h", len(kept))
	}
	if err := ValidateFrequencyBlocks(kept); err != nil {
		t.Fatalf("the kept history does not validate: %v", err)
	}
	e := NewEstimator(DefaultConfig())
	if err := e.SeedFrequencyHistory(kept); err != nil {
		t.Fatal(err)
	}
	e.AddSample(5e12, 0, 0)
	if got, want := e.walkLimit(), old.walkLimit(); math.Abs(got.capVar-want.capVar) > 1e-12 || math.Abs(got.spanS-want.spanS) > 1e-6 {
		t.Errorf("seeded limit %+v, the old estimator's %+v", got, want)
	}
	if err := e.SeedFrequencyHistory(kept); err == nil {
		t.Error("seeded after the first sample")
	}

	block := func(age, length, f float64) FrequencyBlock {
		return FrequencyBlock{AgeS: age, LengthS: length, FreqPPB: f}
	}
	tests := []struct {
		name string
		bs   []FrequencyBlock
		want string
	}{
		{"none", nil, ""},
		{"two in order", []FrequencyBlock{block(2000, 1024, 1), block(0, 1024, 2)}, ""},
		{"overlapping", []FrequencyBlock{block(1000, 1024, 1), block(0, 1024, 2)}, "overlaps"},
		{"newest first", []FrequencyBlock{block(0, 1024, 1), block(2000, 1024, 2)}, "overlaps"},
		{"short", []FrequencyBlock{block(0, 1000, 1)}, "length 1000"},
		{"too long", []FrequencyBlock{block(0, 3000, 1)}, "length 3000"},
		{"too old", []FrequencyBlock{block(wanderHistoryS, 1024, 1)}, "want within"},
		{"negative age", []FrequencyBlock{block(-1, 1024, 1)}, "want within"},
		{"not a number", []FrequencyBlock{block(0, 1024, math.NaN())}, "frequency NaN"},
		{"too many", make([]FrequencyBlock, maxKeptBlocks+1), "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateFrequencyBlocks(tt.bs)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("ValidateFrequencyBlocks: %v, want %q", err, tt.want)
			}
			if tt.want != "" {
				if err := NewEstimator(DefaultConfig()).SeedFrequencyHistory(tt.bs); err == nil {
					t.Error("seeded anyway")
				}
			}
		})
	}
}
