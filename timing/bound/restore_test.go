package bound

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRestore: samples that followed a reference dragged at 100 ns/s
// pull the estimator's frequency along; restored to the checkpoint from
// before the drag, it estimates the clock's offset against the reference
// as it was, within its bound, and the checkpoint's frequency. Its
// uncertainty then grows as that of a twin that took no sample after
// the checkpoint: what the drag taught the Allan statistics (a 100 ppb
// frequency step) is forgotten.
func TestRestore(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 1))
	e := NewEstimator(DefaultConfig())
	twin := NewEstimator(DefaultConfig())
	const y = 2500.0 // the oscillator's frequency error, ppb: corrected exactly
	var cp Checkpoint
	var x float64 // the clock's true offset (ns)
	for k := range 3600 + 300 {
		local := int64(k) * 1e9
		drag := 0.0
		if k >= 3600 {
			drag = 100 * float64(k-3600) // the reference's error, ns
		}
		// A servo that follows the reference: the clock moves with it.
		steer := 0.0
		if k >= 3600 {
			steer = 100
		}
		meas := x - drag + 1e3*rng.NormFloat64()
		e.AddSample(local, meas, -y+steer)
		if k < 3600 {
			twin.AddSample(local, meas, -y)
		}
		x += steer
		if k == 3599 {
			var ok bool
			if cp, ok = e.Checkpoint(); !ok {
				t.Fatal("no checkpoint after an hour of samples")
			}
		}
	}
	now := int64(3900) * 1e9
	dragged := e.FrequencyPPB()
	if off, _, _ := e.Offset(now); math.Abs(off) > 5e3 {
		t.Fatalf("before the restore the estimator follows the drag: offset %.0f ns, want about 0", off)
	}
	e.Restore(cp)
	off, sigma, _ := e.Offset(now)
	if math.Abs(off-x) > 4*sigma || math.Abs(off-x) > 5e3 {
		t.Errorf("restored: offset %.0f ns ± %.0f, true %.0f", off, sigma, x)
	}
	if b := float64(e.Bound(now)); b < math.Abs(x) {
		t.Errorf("restored bound %.0f ns does not cover the true offset %.0f", b, x)
	}
	if f := e.FrequencyPPB(); math.Abs(f-y) > 5 || math.Abs(dragged-y) < 50 {
		t.Errorf("frequency %.1f ppb restored (%.1f dragged), want %.0f", f, dragged, y)
	}
	later := now + 3600e9
	_, sigma, _ = e.Offset(later)
	_, twinSigma, _ := twin.Offset(later)
	if r := sigma / twinSigma; r > 1.05 || r < 0.95 {
		t.Errorf("an hour into the holdover: σ %.0f ns restored, %.0f ns for a twin without the drag (ratio %.2f, want 1)", sigma, twinSigma, r)
	}
}
