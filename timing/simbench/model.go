package simbench

import (
	"math"
	"math/rand/v2"
)

// Oscillator describes the free-running local clock.
type Oscillator struct {
	InitFreqPPB float64 // initial frequency error (ppb, positive = fast)
	WhiteFM     float64 // white frequency noise, ns/√s (q_wf = WhiteFM²)
	RandomWalk  float64 // random-walk frequency noise, ppb/√s (q_rw = RandomWalk²)
	TempAmpC    float64 // temperature cycle amplitude (°C, half peak-to-peak)
	TempPeriodS float64 // temperature cycle period (s)
	TempCoPPB   float64 // frequency sensitivity (ppb/°C)
}

// PPS describes the timestamping of the pulse.
type PPS struct {
	NoiseNs    float64 // white timestamp noise σ (ns)
	SpikeProb  float64 // probability per pulse of a latency spike
	SpikeMinNs float64 // spike delay range, uniform (ns)
	SpikeMaxNs float64
}

// Outage is a span without pulses.
type Outage struct {
	StartS, DurationS int
}

// Scenario is one bench case.
type Scenario struct {
	Name        string
	Description string
	Osc         Oscillator
	PPS         PPS
	InitPhaseNs float64  // true offset at the first pulse
	DurationS   int      // simulated seconds
	SettleS     int      // steady-state statistics start here
	Outages     []Outage // the first one is the holdover probe
	Seed        uint64
	// RestartS, when not 0, replaces the discipline at that second by a
	// new one on the same clock, as `systemctl restart timenoded` does
	// (the kernel clock runs on at its frequency). KeepStability seeds
	// the new one with the oscillator stability the old one measured
	// (Config.Stability), KeepServo with its servo's memory
	// (Config.ServoMemory), as the daemon does from its state directory.
	RestartS                 int
	KeepStability, KeepServo bool
}

// oracleNoise returns the noise model the oracle is told: the true
// timestamp and frequency noise. Like our servo it reads the temperature
// sensor and learns the temperature coefficient.
func (s Scenario) oracleNoise() (r, qwf, qrw float64) {
	o := s.Osc
	return s.PPS.NoiseNs * s.PPS.NoiseNs, o.WhiteFM * o.WhiteFM, o.RandomWalk * o.RandomWalk
}

// Temperature returns the oscillator temperature (°C, relative to its
// mean) at second t: what a sensor next to it reads.
func (o Oscillator) Temperature(t float64) float64 {
	if o.TempPeriodS <= 0 {
		return 0
	}
	return o.TempAmpC * math.Sin(2*math.Pi*t/o.TempPeriodS)
}

// world is one realisation of a scenario: the true oscillator and the PPS
// measurements. Its random draws do not depend on what the servo does, so
// every servo sees the same noise.
type world struct {
	sc  Scenario
	rng *rand.Rand
	rw  float64 // random-walk part of the frequency (ppb)
}

func newWorld(sc Scenario) *world {
	return &world{sc: sc, rng: rand.New(rand.NewPCG(sc.Seed, 0x5eed))}
}

// second draws the randomness of second k: the oscillator's mean frequency
// error over [k, k+1) (ppb, including white FM as its phase effect), the
// measurement error of pulse k, whether it is a spike and whether it
// exists at all.
func (w *world) second(k int) (freqPPB, measErrNs float64, spike, present bool) {
	o := w.sc.Osc
	temp := o.Temperature(float64(k) + 0.5)
	wf := o.WhiteFM * w.rng.NormFloat64()
	freqPPB = o.InitFreqPPB + w.rw + o.TempCoPPB*temp + wf
	w.rw += o.RandomWalk * w.rng.NormFloat64()
	p := w.sc.PPS
	measErrNs = p.NoiseNs * w.rng.NormFloat64()
	u, d := w.rng.Float64(), w.rng.Float64()
	if u < p.SpikeProb {
		spike = true
		measErrNs += p.SpikeMinNs + d*(p.SpikeMaxNs-p.SpikeMinNs)
	}
	present = true
	for _, out := range w.sc.Outages {
		if k >= out.StartS && k < out.StartS+out.DurationS {
			present = false
		}
	}
	return freqPPB, measErrNs, spike, present
}

// Scenarios returns the bench's scenarios (a)–(f) of issue 5 and (g), the
// outside harness of issue 17.
func Scenarios() []Scenario {
	tcxo := Oscillator{InitFreqPPB: 3000, WhiteFM: 0.1, RandomWalk: 0.005,
		TempAmpC: 0.5, TempPeriodS: 4 * 3600, TempCoPPB: 10}
	kernel := PPS{NoiseNs: 1e3}
	const hour = 3600
	probe := []Outage{{StartS: 6 * hour, DurationS: hour}}
	base := Scenario{Osc: tcxo, PPS: kernel, InitPhaseNs: 0.35e9,
		DurationS: 7 * hour, SettleS: 1800, Outages: probe}
	a := base
	a.Name, a.Description, a.Seed = "a", "TCXO, kernel PPS, 1 µs timestamp noise", 1
	b := base
	b.Name, b.Description, b.Seed = "b", "cheap XO, 5 °C HVAC cycle (20 min), 1 µs noise", 2
	b.Osc = Oscillator{InitFreqPPB: 15e3, WhiteFM: 1, RandomWalk: 0.05,
		TempAmpC: 2.5, TempPeriodS: 1200, TempCoPPB: 200}
	c := base
	c.Name, c.Description, c.Seed = "c", "TCXO, 10 µs noise, 1 % spikes of 100 µs–1 ms", 3
	c.PPS = PPS{NoiseNs: 10e3, SpikeProb: 0.01, SpikeMinNs: 100e3, SpikeMaxNs: 1e6}
	d := base
	d.Name, d.Description, d.Seed = "d", "TCXO, 1 h GNSS outage after 2 h, then re-acquisition", 4
	d.Outages = []Outage{{StartS: 2 * hour, DurationS: hour}}
	d.DurationS = 5 * hour
	e := base
	e.Name, e.Description, e.Seed = "e", "TCXO, user-space GPIO PPS, 50 µs noise", 5
	e.PPS = PPS{NoiseNs: 50e3}
	f := base
	f.Name, f.Description, f.Seed = "f", "TCXO with 200 ppm initial frequency error, 1 µs noise", 6
	f.Osc.InitFreqPPB = 200e3
	// The outside harness of issue 17: no temperature term, a noisier
	// random walk, (c)'s timestamps, and the −200 ppm start (f) lacks.
	g := base
	g.Name, g.Description, g.Seed = "g", "issue 17 harness: RW FM 0.1 ppb/√s, 10 µs noise, 1 % spikes, −200 ppm", 7
	g.Osc = Oscillator{InitFreqPPB: -200e3, RandomWalk: 0.1}
	g.PPS = c.PPS
	return []Scenario{a, b, c, d, e, f, g}
}
