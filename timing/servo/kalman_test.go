package servo_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/aunsorm/timenode/timing/bound"
	"github.com/aunsorm/timenode/timing/servo"
)

// clock is a minimal oscillator for unit tests: frequency error freq(k) ppb
// in second k, white timestamp noise of sigma ns, and with probability
// spikeProb a latency spike of 0.1–1 ms on a timestamp.
type clock struct {
	x         float64
	rng       *rand.Rand
	sigma     float64
	spikeProb float64
	t0        int // seconds run before: a second run goes on from there
}

// run drives s for n seconds and returns the true offsets before each
// sample.
func (c *clock) run(s *servo.Servo, n int, freq func(k int) float64, temp func(k int) float64) []float64 {
	var xs []float64
	defer func() { c.t0 += n }()
	for k := range n {
		if temp != nil {
			s.SetTemperature(temp(k))
		}
		xs = append(xs, c.x)
		meas := c.x + c.sigma*c.rng.NormFloat64()
		if c.spikeProb > 0 && c.rng.Float64() < c.spikeProb {
			meas += 100e3 + 900e3*c.rng.Float64()
		}
		out := s.Sample(meas, int64(c.t0+k)*1e9)
		if out.State == servo.Jump {
			c.x += out.StepNs
		}
		c.x += freq(k) + out.FreqPPB
	}
	return xs
}

func rms(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x * x
	}
	return math.Sqrt(s / float64(len(xs)))
}

func TestKalmanConverges(t *testing.T) {
	tests := []struct {
		name    string
		freqPPB float64
		sigma   float64
		alg     func() servo.Algorithm
		maxRMS  float64 // over the last 1000 s
		holdTol float64 // ppb
	}{
		{"adaptive, 1 µs noise", 5e3, 1e3, func() servo.Algorithm { return servo.NewKalman(servo.DefaultKalmanConfig()) }, 250, 2},
		{"adaptive, 50 µs noise", -80e3, 50e3, func() servo.Algorithm { return servo.NewKalman(servo.DefaultKalmanConfig()) }, 10e3, 30},
		{"oracle, 1 µs noise", 5e3, 1e3, func() servo.Algorithm {
			return servo.NewKalman(servo.KalmanConfig{Noise: &bound.Noise{R: 1e6, Qrw: 1e-4}})
		}, 250, 2},
		// The PI's integral carries Ki times the timestamp noise.
		{"PI baseline, 1 µs noise", 5e3, 1e3, func() servo.Algorithm { return servo.NewPI() }, 1500, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{x: 20e3, rng: rand.New(rand.NewPCG(7, 7)), sigma: tt.sigma}
			s := servo.New(servo.DefaultConfig(), tt.alg(), 0)
			xs := c.run(s, 3000, func(int) float64 { return tt.freqPPB }, nil)
			if got := rms(xs[2000:]); got > tt.maxRMS {
				t.Errorf("steady-state RMS %.0f ns, want ≤ %.0f ns", got, tt.maxRMS)
			}
			if got := s.HoldoverFrequency(); math.Abs(got+tt.freqPPB) > tt.holdTol {
				t.Errorf("holdover frequency %.2f ppb, want ≈ %.2f", got, -tt.freqPPB)
			}
		})
	}
}

func TestKalmanMeasuresNoise(t *testing.T) {
	for _, sigma := range []float64{1e3, 10e3, 50e3} {
		t.Run(fmt.Sprintf("%.0fns", sigma), func(t *testing.T) {
			k := servo.NewKalman(servo.DefaultKalmanConfig())
			c := &clock{rng: rand.New(rand.NewPCG(3, 1)), sigma: sigma}
			c.run(servo.New(servo.DefaultConfig(), k, 0), 2000, func(int) float64 { return 1e3 }, nil)
			if got := k.NoiseSigma(); math.Abs(got/sigma-1) > 0.1 {
				t.Errorf("measured noise %.0f ns, want %.0f ± 10 %%", got, sigma)
			}
		})
	}
}

func TestKalmanLearnsTemperature(t *testing.T) {
	const tempco = 150.0 // ppb/°C
	temp := func(k int) float64 { return 2 * math.Sin(2*math.Pi*float64(k)/1200) }
	freq := func(k int) float64 { return 3e3 + tempco*2*math.Sin(2*math.Pi*(float64(k)+0.5)/1200) }
	tests := []struct {
		name   string
		temp   func(int) float64
		maxRMS float64
	}{
		{"with sensor", temp, 300},
		{"without sensor", nil, 5e3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := servo.NewKalman(servo.DefaultKalmanConfig())
			c := &clock{rng: rand.New(rand.NewPCG(5, 5)), sigma: 1e3}
			s := servo.New(servo.DefaultConfig(), k, 0)
			xs := c.run(s, 6000, freq, tt.temp)
			if got := rms(xs[3000:]); got > tt.maxRMS {
				t.Errorf("RMS %.0f ns, want ≤ %.0f", got, tt.maxRMS)
			}
			// The modelled temperature term is what the bound estimator
			// takes out of the oscillator's stability: the coefficient
			// times the last reading, none without a sensor.
			wantTerm := 0.0
			if tt.temp != nil {
				if got := k.TempCoefficient(); math.Abs(got-tempco) > 10 {
					t.Errorf("learnt coefficient %.1f ppb/°C, want %.0f ± 10", got, tempco)
				}
				wantTerm = k.TempCoefficient() * tt.temp(5999)
			}
			if got := s.TemperatureTerm(); math.Abs(got-wantTerm) > 1e-9 {
				t.Errorf("temperature term %g ppb, want %g", got, wantTerm)
			}
		})
	}
}

func TestKalmanSlewLimit(t *testing.T) {
	cfg := servo.DefaultKalmanConfig()
	cfg.MaxSlewPPB = 1e3
	s := servo.New(servo.DefaultConfig(), servo.NewKalman(cfg), 0)
	c := &clock{x: 50e6, rng: rand.New(rand.NewPCG(1, 1)), sigma: 0}
	c.run(s, 10, func(int) float64 { return 0 }, nil)
	if got := s.Frequency(); math.Abs(got) > 1e3+1e-6 {
		t.Errorf("frequency %g exceeds the 1000 ppb slew limit with no frequency error", got)
	}
}

// TestEarlySpike: one latency spike early in an otherwise clean stream,
// inside the start or before the noise is measured and the policy's spike
// window has filled, moves neither the frequency estimate nor the
// commanded frequency more than a few ppm from the same run without it
// (on the spike's own sample the servo holds its frequency estimate,
// without the phase term), and the clock locks (true offset within 10 µs
// and staying there) within 60 s. Before the robust start and the early
// gate such a spike commanded up to 500 ppm and cost up to half an hour.
// The timestamp noise is 5 µs, so that the 10 µs lock criterion is about
// the spike, not about the noise.
func TestEarlySpike(t *testing.T) {
	const sigma = 5e3
	tests := []struct {
		name    string
		freqPPB float64 // oscillator frequency error
		phaseNs float64 // initial offset
		spikeAt int     // sample index of the spike (0-based)
		spikeNs float64
	}{
		{"sample 2, slewed start", 150e3, 30e3, 1, 800e3},
		{"sample 5, slewed start", -200e3, -20e3, 4, 400e3},
		{"sample 10, slewed start", 80e3, 0, 9, 1e6},
		{"sample 2, stepped start", 200e3, 0.3e9, 1, 700e3},
		{"sample 5, stepped start", -200e3, -0.4e9, 4, 150e3},
		{"sample 10, stepped start", 3e3, 0.35e9, 9, 900e3},
		{"sample 12, stepped start", -120e3, 0.2e9, 11, 1e6},
	}
	run := func(freq, phase float64, spikeAt int, spikeNs float64) (cmd, hold, xs []float64) {
		k := servo.NewKalman(servo.DefaultKalmanConfig())
		s := servo.New(servo.DefaultConfig(), k, 0)
		rng := rand.New(rand.NewPCG(11, 17))
		x := phase
		for i := range 120 {
			xs = append(xs, x)
			meas := x + sigma*rng.NormFloat64()
			if i == spikeAt {
				meas += spikeNs
			}
			out := s.Sample(meas, int64(i)*1e9)
			if out.State == servo.Jump {
				x += out.StepNs
			}
			cmd = append(cmd, out.FreqPPB)
			hold = append(hold, s.HoldoverFrequency())
			x += freq + out.FreqPPB
		}
		return cmd, hold, xs
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, hold, xs := run(tt.freqPPB, tt.phaseNs, tt.spikeAt, tt.spikeNs)
			cleanCmd, cleanHold, _ := run(tt.freqPPB, tt.phaseNs, -1, 0)
			for i := range cmd {
				if i == tt.spikeAt && cmd[i] == hold[i] {
					continue // rejected: the holdover frequency
				}
				if d := math.Abs(cmd[i] - cleanCmd[i]); d > 5e3 {
					t.Fatalf("sample %d: commanded %.0f ppb, %.0f ppb from the run without the spike", i, cmd[i], d)
				}
				if d := math.Abs(hold[i] - cleanHold[i]); d > 5e3 {
					t.Fatalf("sample %d: frequency estimate %.0f ppb, %.0f ppb from the run without the spike", i, hold[i], d)
				}
			}
			if got := hold[len(hold)-1]; math.Abs(got+tt.freqPPB) > 2e3 {
				t.Errorf("frequency estimate %.0f ppb at the end, want %.0f ± 2 ppm", got, -tt.freqPPB)
			}
			for i := 60; i < len(xs); i++ {
				if math.Abs(xs[i]) > 10e3 {
					t.Fatalf("true offset %.0f ns at %d s: not locked within 60 s", xs[i], i)
				}
			}
		})
	}
}

// TestBankHoldsAndSwitches: the bank keeps its filter while no other is
// clearly more likely, however noisy the timestamps, changes when the
// oscillator's wander does, and ends within two decades of the true noise
// ratio (the yardstick: 29 % of seconds at 50 µs noise were
// steered by a filter further off).
func TestBankHoldsAndSwitches(t *testing.T) {
	tests := []struct {
		name         string
		sigma        float64 // timestamp noise (ns)
		rwBefore     float64 // random-walk FM (ppb/√s) in the first half
		rwAfter      float64 // and in the second
		minSw, maxSw int
	}{
		{"50 µs noise, steady TCXO: holds", 50e3, 0.005, 0.005, 0, 6},
		{"1 µs noise, steady TCXO: holds", 1e3, 0.005, 0.005, 0, 6},
		{"1 µs noise, wander grows: switches", 1e3, 0.005, 2, 1, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 8000
			k := servo.NewKalman(servo.DefaultKalmanConfig())
			s := servo.New(servo.DefaultConfig(), k, 0)
			c := &clock{rng: rand.New(rand.NewPCG(21, 4)), sigma: tt.sigma}
			wr := rand.New(rand.NewPCG(5, 8))
			y := 2e3
			c.run(s, n, func(i int) float64 {
				rw := tt.rwBefore
				if i >= n/2 {
					rw = tt.rwAfter
				}
				y += rw * wr.NormFloat64()
				return y
			}, nil)
			sw := k.Switches()
			ratio := tt.rwAfter * tt.rwAfter / (tt.sigma * tt.sigma)
			off := math.Abs(math.Log10(k.Bandwidth() / ratio))
			t.Logf("%d switches, bandwidth %.3g, true ratio %.3g", sw, k.Bandwidth(), ratio)
			if sw < tt.minSw || sw > tt.maxSw {
				t.Errorf("%d filter switches, want %d…%d", sw, tt.minSw, tt.maxSw)
			}
			if off > 2 {
				t.Errorf("selected ratio %.3g, %.1f decades from the true %.3g; want within 2", k.Bandwidth(), off, ratio)
			}
		})
	}
}

// TestKalmanPredictions: what the servo tells the bound estimator. None
// while it starts; afterwards the models its data cannot exclude, whose
// worst |mean| + 4σ one second on covers the true offset at the next
// pulse, and not loosely (measured from 10000 s on, of 20000 s). The
// looseness is judged over eight noise seeds: one seed's median
// bound/error moves by a factor of two with where its error happened to
// fall (4.2–17.1 at 50 µs, while the bound itself moved by 15 %).
func TestKalmanPredictions(t *testing.T) {
	for _, sigma := range []float64{1e3, 10e3, 50e3} {
		t.Run(fmt.Sprintf("%.0f µs noise", sigma/1e3), func(t *testing.T) {
			var meds []float64
			for seed := uint64(1); seed <= 8; seed++ {
				cov, med := predictionCoverage(t, sigma, seed)
				t.Logf("seed %d: coverage %.4f %%, median bound/error %.1f", seed, 100*cov, med)
				if cov < 0.999 {
					t.Errorf("seed %d: coverage %.4f %%, want ≥ 99.9 %%", seed, 100*cov)
				}
				meds = append(meds, med)
			}
			// 4σ of the right model alone gives about 6; the models
			// the data cannot exclude, a decade of wander either side
			// at this length of data, cost up to 1.7 times that.
			slices.Sort(meds)
			if med := (meds[3] + meds[4]) / 2; med < 3 || med > 11 {
				t.Errorf("median over seeds of the median bound/error %.1f, want within [3, 11]", med)
			}
		})
	}
}

// predictionCoverage runs the shipped Kalman servo closed loop on a
// clock 3 ppm off with random-walk FM, under white timestamp noise of
// sigma ns, and returns over the second half of 20000 s the share of
// pulses whose true offset the predictions' worst |mean| + 4σ covered,
// and the median ratio of that bound to the error.
func predictionCoverage(t *testing.T, sigma float64, seed uint64) (cov, med float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 5))
	s := servo.New(servo.DefaultConfig(), servo.NewKalman(servo.DefaultKalmanConfig()), 0)
	x, y := 20e3, 3e3
	var ratios []float64
	in, n := 0, 0
	var ps []bound.Prediction
	for k := range 20000 {
		if k > 10000 && len(ps) > 0 {
			b := 0.0
			for _, p := range ps {
				if p.HistoryOnly { // a second on, within bound.LongHorizon
					continue
				}
				v := p.Pxx + 2*p.Pxy + p.Pyy + p.Qrw/3
				b = math.Max(b, math.Abs(p.PhaseNs+p.FreqPPB+s.Frequency())+4*math.Sqrt(v))
			}
			n++
			if math.Abs(x) <= b {
				in++
			}
			ratios = append(ratios, b/math.Abs(x))
		}
		out := s.Sample(x+sigma*rng.NormFloat64(), int64(k)*1e9)
		if out.State == servo.Jump {
			x += out.StepNs
		}
		ps = s.Predictions(ps[:0])
		if k < servo.DefaultConfig().StartSamples && len(ps) > 0 {
			t.Fatalf("%d predictions at sample %d, during the start", len(ps), k)
		}
		x += y + out.FreqPPB
		y += 0.01 * rng.NormFloat64()
	}
	if n == 0 {
		t.Fatal("no predictions")
	}
	slices.Sort(ratios)
	return float64(in) / float64(n), ratios[len(ratios)/2]
}

// TestEarlyOutlierAfterLock: once locked and the noise measured, one
// timestamp far early (a bouncing PPS line's spurious edge) is taken at
// reduced weight: the servo reports it Clipped, commands a frequency within
// a few ppb of the run without it, and its holdover frequency stays put.
// Five early in a row are a real step: the fifth goes through at full
// weight and the servo follows it. Before, one 0.74 ms early edge commanded
// 495 ppm and moved the frequency estimate by 77 ppm.
func TestEarlyOutlierAfterLock(t *testing.T) {
	const sigma = 1e3 // timestamp noise, ns
	run := func(from, n int, stepNs float64) (cmd, hold []float64, clipped []int) {
		k := servo.NewKalman(servo.DefaultKalmanConfig())
		s := servo.New(servo.DefaultConfig(), k, 0)
		rng := rand.New(rand.NewPCG(3, 9))
		x := 2e3
		for i := range 300 {
			meas := x + sigma*rng.NormFloat64()
			if i >= from && i < from+n {
				meas -= stepNs
			}
			out := s.Sample(meas, int64(i)*1e9)
			if out.State == servo.Jump {
				x += out.StepNs
			}
			if out.Clipped {
				clipped = append(clipped, i)
			}
			cmd = append(cmd, out.FreqPPB)
			hold = append(hold, s.HoldoverFrequency())
			x += 5e3 + out.FreqPPB // a 5 ppm oscillator
		}
		return cmd, hold, clipped
	}
	cleanCmd, cleanHold, cleanClipped := run(-1, 0, 0)
	if len(cleanClipped) != 0 {
		t.Fatalf("clean run: samples %v clipped", cleanClipped)
	}

	cmd, hold, clipped := run(200, 1, 740e3)
	if !slices.Equal(clipped, []int{200}) {
		t.Fatalf("one 740 µs early edge: clipped samples %v, want [200]", clipped)
	}
	for i := 200; i < 300; i++ {
		if d := math.Abs(cmd[i] - cleanCmd[i]); d > 200 {
			t.Fatalf("sample %d: commanded %.0f ppb, %.0f ppb from the run without the outlier", i, cmd[i], d)
		}
		if d := math.Abs(hold[i] - cleanHold[i]); d > 50 {
			t.Fatalf("sample %d: holdover frequency %.0f ppb, %.0f ppb from the run without the outlier", i, hold[i], d)
		}
	}

	// A step of 500 µs that stays: the first four are down-weighted, the
	// fifth is taken in full and the servo slews to follow (then the gate
	// counts afresh, as on the late side).
	cmd, _, clipped = run(200, 100, 500e3)
	if len(clipped) < 5 || !slices.Equal(clipped[:5], []int{200, 201, 202, 203, 205}) {
		t.Fatalf("a lasting step: clipped samples %v, want 200-203, then the fifth taken in full", clipped)
	}
	if cmd[204] < 100e3 {
		t.Fatalf("the fifth sample of a 500 µs step commanded %.0f ppb, want a slew towards it", cmd[204])
	}
}

// TestNoPredictionsFromTheBanksFastestFilter: when the data wants at least
// the bank's widest bandwidth (timestamps cleaner than the noise floor,
// strong frequency wander), the selected filter cannot be told from
// faster ones the bank lacks, and the servo offers no predictions for the
// bound; with ordinary noise it does.
func TestNoPredictionsFromTheBanksFastestFilter(t *testing.T) {
	fastest := math.Pow(10, servo.DefaultKalmanConfig().MaxLogRatio)
	run := func(sigma, wander float64) (*servo.Kalman, int) {
		k := servo.NewKalman(servo.DefaultKalmanConfig())
		s := servo.New(servo.DefaultConfig(), k, 0)
		rng := rand.New(rand.NewPCG(8, 1))
		x, y := 1e3, 2e3
		for i := range 900 {
			out := s.Sample(x+sigma*rng.NormFloat64(), int64(i)*1e9)
			if out.State == servo.Jump {
				x += out.StepNs
			}
			x += y + out.FreqPPB
			y += wander * rng.NormFloat64()
		}
		return k, len(k.Predictions(nil))
	}
	k, n := run(0, 5)
	if k.Bandwidth() != fastest || n != 0 {
		t.Errorf("clean timestamps, 5 ppb/√s wander: bandwidth %g (fastest %g), %d predictions, want the fastest and none", k.Bandwidth(), fastest, n)
	}
	k, n = run(1e3, 0.01)
	if k.Bandwidth() >= fastest || n == 0 {
		t.Errorf("1 µs noise, 0.01 ppb/√s wander: bandwidth %g, %d predictions, want a slower filter and some", k.Bandwidth(), n)
	}
}

// TestKalmanNoiseFarAbovePrior: timestamps jittered by hundreds of µs to
// ms (a loaded guest's kernel PPS, a busy GPIO line) against the 10 µs
// the filters assume until they have measured the noise. Until then the
// late side of the gate judges by that prior and refuses most late
// samples; measured on the rest, the noise stayed at the prior and the
// bank, taught by one side of it, steered with filters that follow the
// noise (1 ms: a median 12.9 ppm, 90th percentile 192 ppm off after
// 20 min). The servo must do about as well as one told the noise in
// advance.
func TestKalmanNoiseFarAbovePrior(t *testing.T) {
	const seeds, secs, y = 100, 1200, 50e3
	run := func(sigma, prior float64) (median, p90 float64) {
		var errs []float64
		for seed := range uint64(seeds) {
			kc := servo.DefaultKalmanConfig()
			if prior > 0 {
				kc.PriorSigmaNs = prior
			}
			s := servo.New(servo.DefaultConfig(), servo.NewKalman(kc), 0)
			c := &clock{rng: rand.New(rand.NewPCG(seed, 5)), sigma: sigma}
			c.run(s, secs, func(int) float64 { return y }, nil)
			errs = append(errs, math.Abs(s.HoldoverFrequency()+y))
		}
		slices.Sort(errs)
		return errs[seeds/2], errs[seeds*9/10]
	}
	for _, sigma := range []float64{300e3, 1e6, 5e6} {
		t.Run(fmt.Sprintf("%.0fus", sigma/1e3), func(t *testing.T) {
			med, p90 := run(sigma, 0)
			refMed, refP90 := run(sigma, sigma)
			t.Logf("frequency error after %d s over %d seeds: median %.3f ppm, 90th percentile %.3f ppm; told the noise: %.3f and %.3f ppm",
				secs, seeds, med/1e3, p90/1e3, refMed/1e3, refP90/1e3)
			if med > 2*refMed || p90 > 2*refP90 {
				t.Errorf("median %.3f ppm and 90th percentile %.3f ppm, want within twice a servo told the noise (%.3f and %.3f ppm)",
					med/1e3, p90/1e3, refMed/1e3, refP90/1e3)
			}
		})
	}
}

// TestFirstRankingKeepsSlowFilters: from ±200 ppm under 10 µs timestamps
// with 1 % latency spikes ((c) of the bench), a start whose first noise
// reading came out low switched to a fast filter at the bank's first
// ranking, which then steered 10–17 µs off for a minute or two and held
// the lock back: 25 of 200 starts locked after 60 s. The truth here is a
// constant frequency: the slowest filters are right.
func TestFirstRankingKeepsSlowFilters(t *testing.T) {
	const seeds, secs = 200, 600
	fast, late := 0, 0
	for seed := range uint64(seeds) {
		k := servo.NewKalman(servo.DefaultKalmanConfig())
		s := servo.New(servo.DefaultConfig(), k, 0)
		c := &clock{x: 0.3e6, rng: rand.New(rand.NewPCG(seed, 9)), sigma: 10e3, spikeProb: 0.01}
		y := 200e3
		if seed%2 == 1 {
			y = -200e3
		}
		lock, wasFast := 0, false
		for i := range secs {
			// A second at a time, to see the filter selected after each.
			if x := c.run(s, 1, func(int) float64 { return y }, nil)[0]; math.Abs(x) >= 10e3 {
				lock = i + 1
			}
			wasFast = wasFast || k.Bandwidth() > 1e-6
		}
		if wasFast {
			fast++
		}
		if lock > 60 {
			late++
		}
	}
	t.Logf("%d of %d starts steered with a filter faster than 1e-6 in their first %d s; %d locked to 10 µs after 60 s", fast, seeds, secs, late)
	if late > seeds/16 {
		t.Errorf("%d of %d starts locked after 60 s, want at most %d", late, seeds, seeds/16)
	}
}

// TestMixtureFollowsTheOracle: under 50 µs of timestamp noise the bank's
// neighbouring filters stay nearly as likely for hours, and steering by
// whichever one was selected left some runs far from a filter told the
// true noise. Steered by the likelihood-weighted mean, the worst of 40
// runs stays within 1.3 times the oracle's RMS over the last two hours:
// 1.24 (90th percentile 1.16), where steering by the selected filter
// alone gave 1.46 (1.28).
func TestMixtureFollowsTheOracle(t *testing.T) {
	const (
		sigma = 50e3 // timestamp noise, ns
		qrw   = 1e-2 // random-walk FM, ppb²/s
		secs  = 4 * 3600
		seeds = 40
	)
	tailRMS := func(k servo.Algorithm, seed uint64) float64 {
		s := servo.New(servo.DefaultConfig(), k, 0)
		c := &clock{x: 0.3e6, rng: rand.New(rand.NewPCG(seed, 17)), sigma: sigma}
		walk := rand.New(rand.NewPCG(seed, 18))
		y := 20e3
		xs := c.run(s, secs, func(int) float64 { y += math.Sqrt(qrw) * walk.NormFloat64(); return y }, nil)
		return rms(xs[secs/2:])
	}
	var ratios []float64
	for seed := range uint64(seeds) {
		ours := tailRMS(servo.NewKalman(servo.DefaultKalmanConfig()), seed)
		oracle := tailRMS(servo.NewKalman(servo.KalmanConfig{Noise: &bound.Noise{R: sigma * sigma, Qrw: qrw}}), seed)
		ratios = append(ratios, ours/oracle)
	}
	slices.Sort(ratios)
	t.Logf("RMS/oracle over %d runs: median %.3f, 90th percentile %.3f, worst %.3f", seeds, ratios[seeds/2], ratios[seeds*9/10], ratios[seeds-1])
	if w := ratios[seeds-1]; w > 1.3 {
		t.Errorf("worst run %.2f times the oracle's RMS, want ≤ 1.3", w)
	}
}

// TestPredictionsKeepLatelyGrownWander: after hours of a quiet
// oscillator its random walk grows fifty-fold (2500 in Qrw). The
// long-memory sums still favour the slow filters, the recent samples
// faster ones. The filter the servo now steers with must still grow the
// holdover bound (not be RecentOnly), so that a holdover is not
// projected with the wander of the quiet hours; judged on the long
// history alone it would be, a filter step (half a decade) slower on
// every seed here.
func TestPredictionsKeepLatelyGrownWander(t *testing.T) {
	const quietRW, loudRW = 0.002, 0.1 // ppb/√s
	for seed := uint64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		c := &clock{rng: rng, sigma: 1e3}
		k := servo.NewKalman(servo.DefaultKalmanConfig())
		s := servo.New(servo.DefaultConfig(), k, 0)
		y := 2e3
		walk := func(rw float64) func(int) float64 {
			return func(int) float64 { y += rw * rng.NormFloat64(); return y }
		}
		// grown is the largest random walk (ppb²/s) of the filters that
		// grow the bound past bound.LongHorizon.
		grown := func() float64 {
			ps := s.Predictions(nil)
			if len(ps) == 0 {
				t.Fatalf("seed %d: no predictions", seed)
			}
			q := 0.0
			for _, p := range ps {
				if !p.RecentOnly {
					q = math.Max(q, p.Qrw)
				}
			}
			return q
		}
		c.run(s, 6*3600, walk(quietRW), nil)
		quiet := grown()
		c.run(s, 1800, walk(loudRW), nil)
		loud := grown()
		steered := k.Bandwidth() * k.NoiseSigma() * k.NoiseSigma()
		t.Logf("seed %d: largest random walk growing the holdover bound %.3g ppb²/s quiet, %.3g once it grew to %.3g; the servo steers with %.3g", seed, quiet, loud, loudRW*loudRW, steered)
		if loud < steered*(1-1e-9) || loud < 10*quiet {
			t.Errorf("seed %d: the holdover bound grows with %.3g ppb²/s after the wander grew to %.3g, below the steered filter's %.3g", seed, loud, loudRW*loudRW, steered)
		}
	}
}
