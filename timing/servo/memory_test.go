package servo_test

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/timing/bound"
	"github.com/aunsorm/timenode/timing/servo"
)

// TestKalmanMemory: a servo seeded with what its predecessor learnt
// starts with the predecessor's ranking (the same selected filter, the
// likelihoods carried on) and its temperature coefficient, where a fresh
// one starts from the prior; its samples then add to the kept
// likelihoods at the kept weight rather than replacing them.
func TestKalmanMemory(t *testing.T) {
	const tempco = 150.0 // ppb/°C
	temp := func(k int) float64 { return 2 * math.Sin(2*math.Pi*float64(k)/1200) }
	freq := func(k int) float64 { return 3e3 + tempco*2*math.Sin(2*math.Pi*(float64(k)+0.5)/1200) }
	old := servo.NewKalman(servo.DefaultKalmanConfig())
	c := &clock{rng: rand.New(rand.NewPCG(5, 5)), sigma: 1e3}
	s := servo.New(servo.DefaultConfig(), old, 0)
	if _, ok := s.Memory(); ok {
		t.Fatal("memory before the first sample")
	}
	c.run(s, 6000, freq, temp)
	m, ok := s.Memory()
	if !ok {
		t.Fatal("no memory after 6000 samples")
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("the servo's own memory does not validate: %v", err)
	}
	if math.Abs(m.TempCo-tempco) > 10 || m.TempCoVar <= 0 || m.TempCoVar > 100 {
		t.Errorf("kept coefficient %.1f ± %.2f ppb/°C, want %.0f ± 10 with its (small) variance", m.TempCo, math.Sqrt(m.TempCoVar), tempco)
	}
	if math.Abs(m.FreqPPB-3e3) > 5 || m.FreqVar <= 0 || m.FreqVar > 25 || m.FreqWalk <= 0 {
		t.Errorf("kept frequency %.1f ± %.2f ppb (walk %g ppb²/s), want 3000 ± 5 with its (small) variance and a random walk",
			m.FreqPPB, math.Sqrt(m.FreqVar), m.FreqWalk)
	}
	if m.Weight < servo.DefaultKalmanConfig().ScoreMemory {
		t.Errorf("weight %.0f samples, want at least the ranking's memory", m.Weight)
	}

	seeded, fresh := servo.NewKalman(servo.DefaultKalmanConfig()), servo.NewKalman(servo.DefaultKalmanConfig())
	if err := seeded.Seed(m); err != nil {
		t.Fatal(err)
	}
	// Until its first sample a seeded bank's memory is the seed: a node
	// restarted again before it learnt anything keeps what it was given,
	// all but the frequency, which is as old as the seed.
	want := m
	want.FreqPPB, want.FreqVar, want.FreqWalk = 0, 0, 0
	if got, ok := seeded.Memory(); !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("seeded bank before its first sample: memory %+v (%v), want the seed without its frequency", got, ok)
	}
	// The same clock, continuing: both new servos take the same samples,
	// 16 (their timestamp noise not yet measured), then 48 more.
	var early servo.Memory
	for i, k := range []*servo.Kalman{seeded, fresh} {
		cc := &clock{rng: rand.New(rand.NewPCG(6, 6)), sigma: 1e3, x: c.x}
		ss := servo.New(servo.DefaultConfig(), k, s.Frequency())
		cc.run(ss, 16, func(j int) float64 { return freq(6000 + j) }, func(j int) float64 { return temp(6000 + j) })
		em, ok := ss.Memory()
		if i == 0 {
			early = em
		}
		if ok != (i == 0) {
			t.Errorf("servo %d after 16 samples: memory %v, want one only for the seeded servo", i, ok)
		}
		cc.run(ss, 48, func(j int) float64 { return freq(6016 + j) }, func(j int) float64 { return temp(6016 + j) })
	}
	if early.Weight < m.Weight {
		t.Errorf("seeded memory after 16 samples has weight %.0f, kept %.0f", early.Weight, m.Weight)
	}
	if got := seeded.TempCoefficient(); math.Abs(got-m.TempCo) > 5 {
		t.Errorf("seeded coefficient %.1f ppb/°C after a minute, want the kept %.1f", got, m.TempCo)
	}
	if got := fresh.TempCoefficient(); math.Abs(got-tempco) < 20 {
		t.Errorf("a fresh servo's coefficient is %.1f ppb/°C after a minute: the test does not tell seeded from fresh", got)
	}
	if seeded.Bandwidth() != old.Bandwidth() {
		t.Errorf("seeded servo steers with the filter of ratio %g, its predecessor with %g", seeded.Bandwidth(), old.Bandwidth())
	}
	sm, ok := seeded.Memory()
	if !ok {
		t.Fatal("no memory after the seeded start")
	}
	// The likelihoods went on from the kept ones: over 64 samples at a
	// forgetting of at least 4096 they moved by a fraction of their size.
	// So did the long-memory sums, with their own weight.
	if len(m.LogLLong) != len(m.LogL) || m.WeightLong < m.Weight {
		t.Fatalf("kept %d long-memory likelihoods of weight %.0f, want %d of at least %.0f", len(m.LogLLong), m.WeightLong, len(m.LogL), m.Weight)
	}
	for i := range m.LogL {
		if d := math.Abs(sm.LogL[i] - m.LogL[i]); d > 0.1*math.Abs(m.LogL[i])+64*20 {
			t.Errorf("filter %d: log-likelihood %.0f after the seeded start, kept %.0f", i, sm.LogL[i], m.LogL[i])
		}
		if d := math.Abs(sm.LogLLong[i] - m.LogLLong[i]); d > 0.1*math.Abs(m.LogLLong[i])+64*20 {
			t.Errorf("filter %d: long-memory log-likelihood %.0f after the seeded start, kept %.0f", i, sm.LogLLong[i], m.LogLLong[i])
		}
	}
	if sm.Weight < m.Weight || sm.WeightLong < m.WeightLong {
		t.Errorf("weights %.0f and %.0f after the seeded start, kept %.0f and %.0f: the kept samples were forgotten", sm.Weight, sm.WeightLong, m.Weight, m.WeightLong)
	}
}

func TestKalmanMemoryValidate(t *testing.T) {
	good := servo.NewKalman(servo.DefaultKalmanConfig())
	c := &clock{rng: rand.New(rand.NewPCG(7, 7)), sigma: 1e3}
	s := servo.New(servo.DefaultConfig(), good, 0)
	c.run(s, 200, func(int) float64 { return 3e3 }, nil)
	m, ok := s.Memory()
	if !ok {
		t.Fatal("no memory after 200 samples")
	}
	clone := func() servo.Memory {
		n := m
		n.Ratios, n.LogL, n.LogLLong = append([]float64(nil), m.Ratios...), append([]float64(nil), m.LogL...), append([]float64(nil), m.LogLLong...)
		return n
	}
	tests := []struct {
		name string
		edit func(*servo.Memory)
		want string
	}{
		{"as kept", func(*servo.Memory) {}, ""},
		{"a likelihood short", func(m *servo.Memory) { m.LogL = m.LogL[1:] }, "want the same number"},
		{"no bank", func(m *servo.Memory) { m.Ratios, m.LogL = nil, nil }, "at least one"},
		{"NaN likelihood", func(m *servo.Memory) { m.LogL[2] = math.NaN() }, "bandwidth 2: log-likelihood NaN"},
		{"zero ratio", func(m *servo.Memory) { m.Ratios[0] = 0 }, "bandwidth 0: noise ratio 0"},
		{"weight past the memory", func(m *servo.Memory) { m.Weight = 1e6 }, "weight"},
		{"absurd coefficient", func(m *servo.Memory) { m.TempCo = 1e9 }, "temperature coefficient"},
		{"no variance", func(m *servo.Memory) { m.TempCoVar = 0 }, "variance 0"},
		{"selected past the bank", func(m *servo.Memory) { m.Selected = len(m.Ratios) }, "selected filter"},
		{"another bank", func(m *servo.Memory) { m.Ratios[3] *= 2 }, "kept bandwidth 3"},
		{"a smaller bank", func(m *servo.Memory) { m.Ratios, m.LogL, m.LogLLong = m.Ratios[1:], m.LogL[1:], m.LogLLong[1:] }, "the bank has"},
		{"a long-memory likelihood short", func(m *servo.Memory) { m.LogLLong = m.LogLLong[1:] }, "long-memory likelihoods, want the same number"},
		{"infinite long-memory likelihood", func(m *servo.Memory) { m.LogLLong[4] = math.Inf(-1) }, "bandwidth 4: long-memory log-likelihood -Inf"},
		{"from before the long memory was kept", func(m *servo.Memory) { m.LogLLong, m.WeightLong = nil, 0 }, ""},
		{"long-memory weight past the memory", func(m *servo.Memory) { m.WeightLong = 1e7 }, "long-memory weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := clone()
			tt.edit(&n)
			err := servo.NewKalman(servo.DefaultKalmanConfig()).Seed(n)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Seed: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Seed: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	// A memory from before the long sums were kept seeds them from the
	// ranking's likelihoods and weight.
	old := clone()
	old.LogLLong, old.WeightLong = nil, 0
	k := servo.NewKalman(servo.DefaultKalmanConfig())
	if err := k.Seed(old); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.Memory(); !slices.Equal(got.LogLLong, m.LogL) || got.WeightLong != m.Weight {
		t.Errorf("seeded from an old memory: long sums %v of weight %v, want the ranking's %v of %v", got.LogLLong, got.WeightLong, m.LogL, m.Weight)
	}
	oracle := servo.NewKalman(servo.KalmanConfig{Noise: &bound.Noise{R: 1e6, Qrw: 1e-4}})
	if err := oracle.Seed(m); err == nil {
		t.Error("a fixed-noise servo accepted a bank's memory")
	}
	if err := servo.New(servo.DefaultConfig(), servo.NewPI(), 0).Seed(m); err == nil {
		t.Error("the PI law accepted a bank's memory")
	}
}

// TestMemoryKeepsTheSteering: the frequency and temperature coefficient
// the bank keeps across a restart are the ones it steers by (the
// likelihood-weighted mixture), so a daemon that stops with the clock at
// HoldoverFrequency keeps that same frequency; and their variances are
// the mixture's, which the errors of the kept values bear out. At 50 µs
// of timestamp noise neighbouring filters disagree for hours: the
// selected filter's values were 0.05–1.9 ppb from the steering's on the
// first eight seeds, and its variances too small (RMS of the errors in
// standard deviations 2.75 for the frequency and 2.28 for the
// coefficient, worst 8.3; the mixture's: 1.41, 1.32, worst 4.7).
func TestMemoryKeepsTheSteering(t *testing.T) {
	const (
		sigma  = 50e3  // timestamp noise, ns
		qrw    = 1e-2  // random-walk FM, ppb²/s
		tempco = 150.0 // ppb/°C
		secs   = 3 * 3600
		seeds  = 40
	)
	temp := func(k int) float64 { return 25 + 5*math.Sin(2*math.Pi*float64(k)/7200) }
	var zf2, zt2 float64
	for seed := range uint64(seeds) {
		k := servo.NewKalman(servo.DefaultKalmanConfig())
		s := servo.New(servo.DefaultConfig(), k, 0)
		c := &clock{x: 0.3e6, rng: rand.New(rand.NewPCG(seed, 23)), sigma: sigma}
		walk := rand.New(rand.NewPCG(seed, 24))
		y := 20e3
		c.run(s, secs, func(i int) float64 {
			y += math.Sqrt(qrw) * walk.NormFloat64()
			return y + tempco*temp(i)
		}, temp)
		m, ok := k.Memory()
		if !ok {
			t.Fatalf("seed %d: no memory after %d s", seed, secs)
		}
		kept := -m.FreqPPB - m.TempCo*temp(secs-1)
		if d := kept - k.HoldoverFrequency(); math.Abs(d) > 1e-9*math.Max(1, math.Abs(kept)) {
			t.Errorf("seed %d: kept frequency %.6f ppb, the servo holds over at %.6f (%.3g apart); want the same",
				seed, kept, k.HoldoverFrequency(), d)
		}
		if err := m.Validate(); err != nil || !(m.FreqVar > 0) {
			t.Fatalf("seed %d: kept memory %+v: %v", seed, m, err)
		}
		// FreqPPB is the free-running frequency at 0 °C, y here.
		zf, zt := (m.FreqPPB-y)/math.Sqrt(m.FreqVar), (m.TempCo-tempco)/math.Sqrt(m.TempCoVar)
		zf2, zt2 = zf2+zf*zf, zt2+zt*zt
	}
	zf, zt := math.Sqrt(zf2/seeds), math.Sqrt(zt2/seeds)
	t.Logf("RMS error of the kept values in standard deviations: frequency %.2f, coefficient %.2f", zf, zt)
	if zf > 2 || zt > 2 {
		t.Errorf("kept values' RMS error %.2f σ (frequency) and %.2f σ (coefficient), want ≤ 2: the kept variances understate the error", zf, zt)
	}
}
