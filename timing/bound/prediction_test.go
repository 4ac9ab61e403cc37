package bound

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// deadBeat simulates a clock steered by a dead-beat servo whose Kalman
// filter knows the true noise (white phase sigma ns, random-walk FM rw
// ppb/√s), locked for lockedS seconds and then holding its frequency for
// holdS. With withPreds the servo's filter is handed to the estimator as
// its prediction, as the discipline does with the Kalman servo's. It
// returns, per second after the first ten minutes, the true offset, the
// bound published at that second (before its sample), and whether the
// clock was locked then.
func deadBeat(seed uint64, sigma, rw float64, lockedS, holdS int, withPreds bool) (off, bnd []float64, locked []bool) {
	rng := rand.New(rand.NewPCG(seed, 17))
	e := NewEstimator(DefaultConfig())
	f := PhaseFilter{R: sigma * sigma, Qrw: rw * rw}
	x, y := 3e3, 1500.0
	f.Init(0, 1e4, 0, 1e4)
	applied := 0.0
	for k := range lockedS + holdS {
		local := int64(k) * 1e9
		if k >= 600 {
			off = append(off, x)
			bnd = append(bnd, float64(e.Bound(local)))
			locked = append(locked, k < lockedS)
		}
		switch {
		case k < lockedS:
			meas := x + sigma*rng.NormFloat64()
			if k > 0 {
				f.Predict(1, applied)
			}
			f.Update(meas)
			prev := applied
			applied = -f.Y - f.X // cancel the frequency and, over a second, the phase
			e.AddSample(local, meas, prev)
			if withPreds {
				e.SetPredictions([]Prediction{{PhaseNs: f.X, FreqPPB: f.Y, Pxx: f.Pxx, Pxy: f.Pxy, Pyy: f.Pyy, Qrw: f.Qrw}})
			}
			e.SetFrequency(local, applied)
		case k == lockedS:
			applied = -f.Y
			e.SetFrequency(local, applied)
		}
		x += y + applied
		y += rw * rng.NormFloat64()
	}
	return off, bnd, locked
}

// TestPredictionsCalibrateTheBound: with the servo's filter as prediction
// the bound covers the true error at least 99.9 % of the seconds, locked
// and in holdover, and its median ratio to the error is what a 4σ
// Gaussian bound gives (about 6), not the estimator's own, which must
// assume the wander its Allan data cannot exclude.
func TestPredictionsCalibrateTheBound(t *testing.T) {
	tests := []struct {
		name      string
		sigma, rw float64
		preds     bool
		lockedMax float64 // the median bound/error while locked must be at most
		holdMax   float64 // and in holdover
	}{
		{"1 µs noise, TCXO", 1e3, 0.005, true, 8, 8},
		{"10 µs noise, TCXO", 10e3, 0.005, true, 8, 8},
		{"50 µs noise, TCXO", 50e3, 0.005, true, 8, 8},
		{"1 µs noise, noisy XO", 1e3, 0.1, true, 8, 8},
		// The same without predictions: the estimator alone, honest but
		// loose. This row pins down what the predictions buy.
		{"50 µs noise, TCXO, estimator alone", 50e3, 0.005, false, 1e9, 1e9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rl, rh []float64
			inL, nL, inH, nH := 0, 0, 0, 0
			for seed := range uint64(20) {
				off, bnd, locked := deadBeat(seed, tt.sigma, tt.rw, 2*3600, 3600, tt.preds)
				for i := range off {
					a := math.Abs(off[i])
					in := 0
					if a <= bnd[i] {
						in = 1
					}
					if locked[i] {
						inL, nL, rl = inL+in, nL+1, append(rl, bnd[i]/a)
					} else {
						inH, nH, rh = inH+in, nH+1, append(rh, bnd[i]/a)
					}
				}
			}
			slices.Sort(rl)
			slices.Sort(rh)
			covL, covH := float64(inL)/float64(nL), float64(inH)/float64(nH)
			medL, medH := rl[len(rl)/2], rh[len(rh)/2]
			t.Logf("locked: coverage %.4f %%, median bound/error %.1f; holdover: %.4f %%, %.1f", 100*covL, medL, 100*covH, medH)
			if covL < 0.999 || covH < 0.999 {
				t.Errorf("coverage locked %.4f %%, holdover %.4f %%, want ≥ 99.9 %%", 100*covL, 100*covH)
			}
			if medL < 3 || medL > tt.lockedMax {
				t.Errorf("median bound/error locked %.1f, want within [3, %g]", medL, tt.lockedMax)
			}
			if medH < 1 || medH > tt.holdMax {
				t.Errorf("median bound/error in holdover %.1f, want within [1, %g]", medH, tt.holdMax)
			}
			if !tt.preds && medL < 10 {
				t.Errorf("estimator alone: median bound/error locked %.1f; the row is meant to show the looser bound", medL)
			}
		})
	}
}

// TestOutlierWithdrawsPredictions: a sample the servo down-weighted and the
// caller leaves out (Outlier) moves neither the estimator's filter nor its
// Allan data, but sets its model-error power past maxPredNIS, so the
// bound stands on the estimator's own model until the power decays, and
// the servo's predictions are used again after that.
func TestOutlierWithdrawsPredictions(t *testing.T) {
	e := NewEstimator(DefaultConfig())
	const sigma = 100.0
	rng := rand.New(rand.NewPCG(4, 2))
	add := func(k int) {
		local := int64(k) * 1e9
		e.AddSample(local, sigma*rng.NormFloat64(), 0)
		// A prediction far tighter than the estimator's own model, so
		// that whether it is used shows in the bound.
		e.SetPredictions([]Prediction{{Pxx: 1, Pyy: 1e-6}})
	}
	for k := range 600 {
		add(k)
	}
	at := int64(600) * 1e9
	if _, ok := e.predBound(at); !ok {
		t.Fatalf("predictions not used before the outlier (nis %.2f)", e.nis)
	}
	x, y := e.filter.X, e.filter.Y
	samples := e.samples
	e.Outlier()
	if e.filter.X != x || e.filter.Y != y || e.samples != samples {
		t.Fatalf("Outlier moved the filter or counted a sample")
	}
	if _, ok := e.predBound(at); ok {
		t.Fatalf("predictions still used after an outlier (nis %.2f)", e.nis)
	}
	back := -1
	for k := 600; k < 1000; k++ {
		add(k)
		if _, ok := e.predBound(int64(k+1) * 1e9); ok {
			back = k - 600
			break
		}
	}
	if back < 10 || back > 200 {
		t.Fatalf("predictions back %d samples after the outlier, want after the power decays (tens of samples)", back)
	}
	t.Logf("predictions used again %d samples after the outlier", back)
}

// TestPredictionsAcrossTheHorizon: within LongHorizon of the sample the
// bound takes every model the recent samples back, and none that only
// the longer history backs; beyond it a recent-only model's variance is
// held at its LongHorizon value while the others' grows, and a
// history-only model counts. Without a model for a horizon the
// estimator's own bound stands.
func TestPredictionsAcrossTheHorizon(t *testing.T) {
	const K = 4
	slow := Prediction{Pxx: 100, Pyy: 1e-4, Qrw: 1e-4}                   // backed by both
	fast := Prediction{Pxx: 100, Pyy: 1e-4, Qrw: 1, RecentOnly: true}    // recent samples only
	old := Prediction{Pxx: 100, Pyy: 1e-4, Qrw: 1e-2, HistoryOnly: true} // longer history only
	at := func(p Prediction, dt float64) float64 {
		_, v := p.project(dt, 0, walkLimit{})
		return K * math.Sqrt(v)
	}
	tests := []struct {
		name  string
		preds []Prediction
		dt    float64
		want  float64 // 0: no bound from the predictions
	}{
		{"within the horizon, the fast model counts", []Prediction{slow, fast, old}, 5, at(fast, 5)},
		{"at the horizon", []Prediction{slow, fast, old}, LongHorizon, at(fast, LongHorizon)},
		{"past it, the history-only model grows", []Prediction{slow, fast, old}, 3600, at(old, 3600)},
		{"past it, the fast model is held", []Prediction{slow, fast}, 3600, math.Max(at(slow, 3600), at(fast, LongHorizon))},
		{"a minute on, the held fast model still dominates", []Prediction{slow, fast}, 60, at(fast, LongHorizon)},
		{"history only, within the horizon", []Prediction{old}, 5, 0},
		{"history only, past it", []Prediction{old}, 100, at(old, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEstimator(Config{K: K})
			e.AddSample(0, 0, 0)
			e.SetPredictions(tt.preds)
			got, ok := e.predBound(int64(tt.dt * 1e9))
			switch {
			case tt.want == 0 && ok:
				t.Errorf("bound %.1f ns from the predictions, want none", got)
			case tt.want != 0 && (!ok || math.Abs(got-tt.want) > 1e-6*tt.want):
				t.Errorf("bound %.1f ns (used %v), want %.1f", got, ok, tt.want)
			}
		})
	}
}
