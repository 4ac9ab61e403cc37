package bound

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// loop simulates a clock steered from the estimator's own frequency and
// offset estimates, locked for lockedS seconds and then in holdover for
// holdS seconds. It returns, for every second after the first minute, the
// true offset and the bound published at that second.
func loop(seed uint64, sigma, rw float64, lockedS, holdS int) (off, bnd []float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	e := NewEstimator(DefaultConfig())
	x, y := 40e3, 2500.0
	for k := range lockedS + holdS {
		local := int64(k) * 1e9
		if k >= 60 {
			off = append(off, x)
			bnd = append(bnd, float64(e.Bound(local)))
		}
		applied := -e.FrequencyPPB()
		if k < lockedS {
			meas := x + sigma*rng.NormFloat64()
			xh, _, _ := e.Offset(local)
			applied -= 0.05 * (0.5*xh + 0.5*meas)
			e.AddSample(local, meas, applied)
		} else if k == lockedS {
			e.SetFrequency(local, applied)
		} else {
			applied = -e.FrequencyPPB()
		}
		x += y + applied
		y += rw * rng.NormFloat64()
	}
	return off, bnd
}

func TestBoundCoverage(t *testing.T) {
	tests := []struct {
		name      string
		sigma, rw float64
	}{
		{"1 µs noise, quiet oscillator", 1e3, 0.005},
		{"10 µs noise", 10e3, 0.005},
		{"1 µs noise, noisy oscillator", 1e3, 0.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, n := 0, 0
			var ratios []float64
			for seed := range uint64(4) {
				off, bnd := loop(seed, tt.sigma, tt.rw, 3*3600, 3600)
				for i := range off {
					n++
					if math.Abs(off[i]) <= bnd[i] {
						in++
					}
					ratios = append(ratios, bnd[i]/math.Abs(off[i]))
				}
			}
			slices.Sort(ratios)
			cov, med := float64(in)/float64(n), ratios[len(ratios)/2]
			if cov < 0.999 {
				t.Errorf("coverage %.4f %%, want ≥ 99.9 %%", 100*cov)
			}
			if med > 100 {
				t.Errorf("median bound/error %.1f, want ≤ 100 (an honest bound is also a useful one)", med)
			}
			t.Logf("coverage %.4f %%, median ratio %.1f", 100*cov, med)
		})
	}
}

func TestBoundGrowsInHoldover(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	e := NewEstimator(DefaultConfig())
	x, y := 0.0, 800.0
	const locked = 7200
	for k := range locked {
		applied := -e.FrequencyPPB()
		e.AddSample(int64(k)*1e9, x+1e3*rng.NormFloat64(), applied)
		x += y + applied
		y += 0.01 * rng.NormFloat64()
	}
	// Holding the estimated frequency, the offset estimate stays put and
	// only the uncertainty grows, with the time since the last sample.
	last := int64(locked-1) * 1e9
	e.SetFrequency(last, -e.FrequencyPPB())
	prev := e.Bound(last)
	for _, after := range []time.Duration{time.Second, time.Minute, 10 * time.Minute, time.Hour, 24 * time.Hour} {
		b := e.Bound(last + int64(after))
		if b <= prev {
			t.Errorf("bound %v after %v of holdover, not wider than %v before", b, after, prev)
		}
		prev = b
	}
	if b1, b0 := e.Bound(last+int64(time.Hour)), e.Bound(last); b1 < 2*b0 {
		t.Errorf("bound after 1 h of holdover %v, barely above the locked %v", b1, b0)
	}
}

func TestBoundBeforeSamples(t *testing.T) {
	e := NewEstimator(Config{})
	if got := e.Bound(0); got != time.Duration(math.MaxInt64) {
		t.Errorf("bound before any sample %v, want the largest duration", got)
	}
	if e.ADEV(1) != 0 {
		t.Error("ADEV before any sample is not 0")
	}
}

func TestStepKeepsPhaseContinuous(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	e := NewEstimator(DefaultConfig())
	x := 300e6
	for k := range 200 {
		local := int64(k) * 1e9
		meas := x + 1e3*rng.NormFloat64()
		e.AddSample(local, meas, 0)
		if k == 1 {
			e.Step(local, -meas)
			x -= meas
		}
		x += 100
	}
	if b := e.Bound(200e9); b > 100*time.Microsecond {
		t.Errorf("bound %v after a step: the step was taken as clock error", b)
	}
}

func TestADEVWhitePhase(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	e := NewEstimator(DefaultConfig())
	for k := range 5000 {
		e.AddSample(int64(k)*1e9, 1e3*rng.NormFloat64(), 0)
	}
	tests := []struct {
		tau  float64
		want float64
	}{
		{1, math.Sqrt(3) * 1e-6},
		{4, math.Sqrt(3) * 1e-6 / 4},
		{16, math.Sqrt(3) * 1e-6 / 16},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("tau=%g", tt.tau), func(t *testing.T) {
			if got := e.ADEV(tt.tau); math.Abs(got/tt.want-1) > 0.15 {
				t.Errorf("ADEV(%g) = %.3g, want %.3g ± 15 %%", tt.tau, got, tt.want)
			}
		})
	}
	// The oscillator's stability is the most the data cannot exclude:
	// with a perfect oscillator, well below what the timestamp noise
	// shows at the same τ, and not zero.
	if got, white := e.OscillatorADEV(100), e.ADEV(100); got <= 0 || got > white/4 {
		t.Errorf("oscillator ADEV(100) = %.3g with a perfect oscillator, want within (0, %.3g]", got, white/4)
	}
}

// TestWanderUpper: the random-walk level the estimator assumes is one the
// data cannot exclude. It covers the true wander, and it shrinks as more
// data rule more out.
func TestWanderUpper(t *testing.T) {
	tests := []struct {
		name    string
		noiseNs float64
		rwPPB   float64 // random-walk FM, ppb/√s
		seconds int
		min     float64 // Qrw must be at least (ppb²/s)
		max     float64 // and at most
	}{
		{"perfect oscillator, 1 µs, 1.4 h", 1e3, 0, 5000, 0.01, 0.2},
		{"perfect oscillator, 1 µs, 6 h", 1e3, 0, 21600, 1e-4, 0.005},
		{"0.1 ppb/√s under 10 µs, 6 h", 10e3, 0.1, 21600, 0.01, 1},
		{"0.1 ppb/√s under 50 µs, 6 h", 50e3, 0.1, 21600, 0.01, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 9))
			e := NewEstimator(DefaultConfig())
			x, y := 0.0, 0.0
			for k := range tt.seconds {
				e.AddSample(int64(k)*1e9, x+tt.noiseNs*rng.NormFloat64(), 0)
				x += y
				y += tt.rwPPB * rng.NormFloat64()
			}
			n, ok := e.Noise()
			if !ok {
				t.Fatal("no fit")
			}
			t.Logf("Qrw %.3g ppb²/s", n.Qrw)
			if n.Qrw < tt.min || n.Qrw > tt.max {
				t.Errorf("Qrw %.3g ppb²/s, want within [%g, %g]", n.Qrw, tt.min, tt.max)
			}
		})
	}
}

// TestOutlierAfterNoiselessFit: after a fit without white phase noise
// (clean timestamps of a wandering oscillator) one 12 ms outlier must not
// make the bound minutes long for the hours the model-error mean takes to
// forget it, and samples at the same instant must not make it NaN.
func TestOutlierAfterNoiselessFit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	e := NewEstimator(DefaultConfig())
	base := int64(1_795_000_000) * 1e9
	x, y := 0.0, 0.0
	k := 0
	for ; k < 200; k++ {
		e.AddSample(base+int64(k)*1e9, x, 0)
		y += 30 * rng.NormFloat64()
		x += y
	}
	if n, _ := e.Noise(); n.R > 100 {
		t.Fatalf("fit %+v: the test wants one with next to no white phase noise", n)
	}
	e.AddSample(base+int64(k)*1e9, x, 0) // the same instant again
	e.AddSample(base+int64(k)*1e9, x+12e6, 0)
	if b := e.Bound(base + int64(k)*1e9); b > 13*time.Millisecond {
		t.Errorf("bound %v at a 12 ms outlier", b)
	}
	k++
	for ; k < 400; k++ {
		e.AddSample(base+int64(k)*1e9, x+1e6*rng.Float64(), 0)
		y += 30 * rng.NormFloat64()
		x += y
		if b := e.Bound(base + int64(k)*1e9); k > 240 && b > 20*time.Millisecond {
			t.Fatalf("%d s after the outlier, with 1 ms of timestamp noise: bound %v", k-200, b)
		}
	}
}
