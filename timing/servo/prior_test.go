package servo_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/aunsorm/timenode/timing/servo"
)

// TestFrequencyPrior restarts a servo on an oscillator 3 ppm fast under
// 20 µs timestamps, the kernel still holding the correction the last run
// left (3 ppb short), and its bank seeded with that run's memory, as the
// daemon does. Over ten seeds: the kept frequency is
// judged once, after five minutes, taken in, and leaves the servo's
// estimate of the oscillator at ten minutes closer than a start without
// it; one 1 ppm or 30 ppm off (another boot's, say) is dropped, and the
// servo goes on as without it. An algorithm without filters ignores it.
func TestFrequencyPrior(t *testing.T) {
	const osc = 3000.0 // ppb
	freq := func(int) float64 { return osc }
	type run struct {
		verdict servo.PriorVerdict
		at      int     // sample of the verdict, 0: none
		errPPB  float64 // |the servo's free-running estimate − the truth| after 600 s
	}
	// What the daemon keeps from an hour and a half before the restart.
	first := servo.New(servo.DefaultConfig(), servo.NewKalman(servo.DefaultKalmanConfig()), 0)
	(&clock{rng: rand.New(rand.NewPCG(1, 1)), sigma: 20e3}).run(first, 5400, freq, nil)
	mem, ok := first.Memory()
	if !ok || math.Abs(mem.FreqPPB-osc) > 3*math.Sqrt(mem.FreqVar) {
		t.Fatalf("first run's memory: %+v (%v), want its frequency within 3σ of %.0f ppb", mem, ok, osc)
	}
	start := func(seed uint64, prior *[2]float64, alg servo.Algorithm) run {
		c := &clock{rng: rand.New(rand.NewPCG(seed, 9)), sigma: 20e3}
		s := servo.New(servo.DefaultConfig(), alg, -osc+3)
		if _, isK := alg.(*servo.Kalman); isK {
			if err := s.Seed(mem); err != nil {
				t.Fatal(err)
			}
		}
		if prior != nil {
			s.SetFrequencyPrior(prior[0], prior[1])
		}
		var r run
		for k := range 600 {
			c.run(s, 1, freq, nil)
			if v, ok := s.TakePriorVerdict(); ok {
				if r.at != 0 {
					t.Fatalf("seed %d: a second verdict at sample %d", seed, k+1)
				}
				r.verdict, r.at = v, k+1
			}
		}
		r.errPPB = math.Abs(s.HoldoverFrequency() + osc)
		return r
	}
	var fresh, kept float64
	for seed := range uint64(10) {
		f := start(seed, nil, servo.NewKalman(servo.DefaultKalmanConfig()))
		if f.at != 0 {
			t.Fatalf("seed %d: a verdict without a kept frequency", seed)
		}
		k := start(seed, &[2]float64{mem.FreqPPB, math.Sqrt(mem.FreqVar)}, servo.NewKalman(servo.DefaultKalmanConfig()))
		if k.at < 300 || k.at > 310 || !k.verdict.Used || k.verdict.KeptSigma != math.Max(2, math.Sqrt(mem.FreqVar)) ||
			math.Abs(k.verdict.FilterPPB-osc) > 4*k.verdict.FilterSigma {
			t.Fatalf("seed %d: the right kept frequency: %+v at sample %d, want it taken in (its σ floored at 2 ppb) after 300 samples of the start's,"+
				" the filter's own within 4σ of the truth", seed, k.verdict, k.at)
		}
		fresh += f.errPPB
		kept += k.errPPB
		for _, off := range []float64{1e3, 30e3} {
			w := start(seed, &[2]float64{osc + off, 2}, servo.NewKalman(servo.DefaultKalmanConfig()))
			if w.at == 0 || w.verdict.Used {
				t.Fatalf("seed %d: a kept frequency %.0f ppb off: %+v at sample %d, want it dropped", seed, off, w.verdict, w.at)
			}
			if w.errPPB != f.errPPB {
				t.Errorf("seed %d: after dropping a kept frequency %.0f ppb off the estimate is %.2f ppb off, without one %.2f",
					seed, off, w.errPPB, f.errPPB)
			}
		}
	}
	t.Logf("mean error of the frequency after 600 s: %.2f ppb measured alone, %.2f ppb with the kept one", fresh/10, kept/10)
	if kept > fresh/2 {
		t.Errorf("mean error after 600 s %.2f ppb with the kept frequency, %.2f ppb without: want under half", kept/10, fresh/10)
	}
	if p := start(0, &[2]float64{osc, 2}, servo.NewPI()); p.at != 0 {
		t.Errorf("the PI law judged a kept frequency: %+v", p.verdict)
	}
}

// TestFrequencyPriorWithdrawn: a re-acquisition (a step) before the
// filters judged a kept frequency withdraws it, and the verdict says so
// once, so that the offer does not vanish from the journal; the servo
// after the step has none.
func TestFrequencyPriorWithdrawn(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	s := servo.New(servo.DefaultConfig(), servo.NewKalman(servo.DefaultKalmanConfig()), 0)
	s.SetFrequencyPrior(250, 40)
	var ns int64
	sample := func(off float64) servo.Output {
		ns += 1e9
		return s.Sample(off, ns)
	}
	for range 100 {
		sample(1e3 * rng.NormFloat64())
	}
	if _, ok := s.TakePriorVerdict(); ok {
		t.Fatal("a verdict after 100 samples, before the filters could judge")
	}
	stepped := false
	for range servo.DefaultConfig().RelockAfter {
		if out := sample(200e6); out.State == servo.Jump {
			stepped = true
		}
	}
	if !stepped {
		t.Fatal("three agreeing offsets of 200 ms did not re-acquire")
	}
	v, ok := s.TakePriorVerdict()
	if !ok || !v.Withdrawn || v.Used || v.KeptPPB != 250 || v.KeptSigma != 40 {
		t.Fatalf("verdict after the step: %+v (%v), want withdrawn, 250 ± 40 ppb", v, ok)
	}
	if _, ok := s.TakePriorVerdict(); ok {
		t.Error("the withdrawal reported twice")
	}
	for range 400 {
		sample(1e3 * rng.NormFloat64())
		if v, ok := s.TakePriorVerdict(); ok {
			t.Fatalf("a verdict after the withdrawal: %+v", v)
		}
	}
}
