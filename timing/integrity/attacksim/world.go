// Package attacksim is the integrity bench's simulator: a clean scenario
// (a TCXO-like oscillator under the PPS, a fixed antenna with realistic
// fix noise, receiver snapshots, independent witnesses over a network
// with delay and jitter), attacks as transformers of its input streams,
// and a runner that feeds the timing/integrity detectors and policy and
// measures detection time, the largest true error before detection and
// false alarms. Everything is seeded and in simulated time.
package attacksim

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/aunsorm/timenode/timing/integrity"
)

// Epoch is the simulated start of every run.
var Epoch = time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)

// Oscillator is the free-running local clock (as timing/simbench's).
type Oscillator struct {
	FreqPPB     float64 // constant frequency error
	WhiteFM     float64 // ns/√s
	RandomWalk  float64 // ppb/√s
	TempAmpPPB  float64 // amplitude of the temperature-driven frequency swing
	TempPeriodS float64
}

// Scenario is a clean world.
type Scenario struct {
	Name        string
	Osc         Oscillator
	PPSNoiseNs  float64 // white timestamp noise σ
	SpikeProb   float64 // latency spikes of 100 µs–1 ms
	FixNoiseM   float64 // horizontal σ of the fix error (vertical twice), Gauss–Markov 300 s
	Witnesses   []WitnessPath
	WitnessPoll time.Duration
	Seed        uint64
}

// WitnessPath is one witness and the network to it.
type WitnessPath struct {
	Name      string
	OneWayUs  float64 // base one-way delay, µs
	Asymmetry float64 // the return path is (1+Asymmetry) times longer
	JitterUs  float64 // mean of the exponential queueing delay each way
	RadiusUs  float64 // the witness's own uncertainty (root distance)
	ErrorUs   float64 // the witness's true error, within RadiusUs
}

// Model returns the noise model the PPS detector is given: what the bound
// estimator would measure, plus the temperature swing's drift rate.
func (s Scenario) Model() integrity.PowerLaw {
	r := s.PPSNoiseNs * s.PPSNoiseNs
	drift := 0.0
	if s.Osc.TempPeriodS > 0 {
		drift = 2 * math.Pi * s.Osc.TempAmpPPB / s.Osc.TempPeriodS
	}
	return integrity.PowerLaw{R: r, Qwf: s.Osc.WhiteFM * s.Osc.WhiteFM, Qrw: s.Osc.RandomWalk * s.Osc.RandomWalk, DriftPPBPerS: drift}
}

// Home is the antenna.
var Home = integrity.Fix{LatDeg: 41.0082, LonDeg: 28.9784, AltM: 65, Valid: true}

// Inputs is one simulated second: the truth and what the node sees.
// Attacks change it in place.
type Inputs struct {
	K int // seconds since Epoch
	// GNSSErrNs is GNSS time minus true time: what a node that follows
	// GNSS gets wrong. The PPS phase and the node's error follow it.
	GNSSErrNs float64
	// OscNs is the oscillator's time minus true time (truth).
	OscNs float64
	// PPS: whether a pulse arrives, its measured phase against the
	// oscillator, and an extra (bounced) edge.
	PPSPresent bool
	PPSPhaseNs float64
	PPSExtra   bool
	PPSExtraNs float64
	Fix        integrity.Fix
	Snap       integrity.Snapshot
}

// world generates the clean inputs second by second.
type world struct {
	s          Scenario
	rng        *rand.Rand
	osc, rw    float64
	ge, gn, gu float64
	cn0        []float64
}

func newWorld(s Scenario) *world {
	w := &world{s: s, rng: rand.New(rand.NewPCG(s.Seed, 0x1e9))}
	// 14 satellites, CN0 by elevation from 30 to 48 dB-Hz.
	for i := range 14 {
		w.cn0 = append(w.cn0, 30+18*float64(i)/13)
	}
	return w
}

func (w *world) next(k int) Inputs {
	o := w.s.Osc
	temp := 0.0
	if o.TempPeriodS > 0 {
		temp = o.TempAmpPPB * math.Sin(2*math.Pi*float64(k)/o.TempPeriodS)
	}
	w.osc += o.FreqPPB + w.rw + temp + o.WhiteFM*w.rng.NormFloat64()
	w.rw += o.RandomWalk * w.rng.NormFloat64()
	in := Inputs{K: k, OscNs: w.osc, PPSPresent: true}
	in.PPSPhaseNs = w.osc + w.s.PPSNoiseNs*w.rng.NormFloat64()
	if w.s.SpikeProb > 0 && w.rng.Float64() < w.s.SpikeProb {
		in.PPSPhaseNs += 100e3 + 900e3*w.rng.Float64()
	}
	a := math.Exp(-1.0 / 300)
	b := math.Sqrt(1 - a*a)
	w.ge = a*w.ge + b*w.s.FixNoiseM*w.rng.NormFloat64()
	w.gn = a*w.gn + b*w.s.FixNoiseM*w.rng.NormFloat64()
	w.gu = a*w.gu + b*2*w.s.FixNoiseM*w.rng.NormFloat64()
	in.Fix = Offset(Home, w.ge, w.gn, w.gu)
	now := Epoch.Add(time.Duration(k) * time.Second)
	cn0 := make([]float64, len(w.cn0))
	for i, c := range w.cn0 {
		cn0[i] = c + w.rng.NormFloat64()
	}
	in.Snap = integrity.Snapshot{
		At: now, Time: now, PPSTime: now, FixValid: true, FixDims: 3,
		Satellites: []integrity.Constellation{{System: "GPS", InView: 11, Used: 8}, {System: "Galileo", InView: 9, Used: 6}},
		CN0:        cn0, HDOP: 0.7 + 0.1*w.rng.Float64(), PDOP: 1.3 + 0.2*w.rng.Float64(),
		LeapSeconds: 18, LeapKnown: true,
	}
	return in
}

// Offset moves f by east, north, up metres.
func Offset(f integrity.Fix, east, north, up float64) integrity.Fix {
	const r = 6371e3
	f.LatDeg += north / r * 180 / math.Pi
	f.LonDeg += east / (r * math.Cos(f.LatDeg*math.Pi/180)) * 180 / math.Pi
	f.AltM += up
	return f
}

// measure simulates one NTP-style exchange with witness p when the node's
// error is nodeErrNs: offset = truth + (d_out − d_back)/2, uncertainty =
// RTT/2 + radius.
func (w *world) measure(p WitnessPath, at time.Time, nodeErrNs float64) integrity.Measurement {
	out := p.OneWayUs + w.rng.ExpFloat64()*p.JitterUs
	back := p.OneWayUs*(1+p.Asymmetry) + w.rng.ExpFloat64()*p.JitterUs
	off := -nodeErrNs + p.ErrorUs*1e3 + (out-back)*1e3/2
	rtt := (out + back) * 1e3
	return integrity.Measurement{Witness: p.Name, At: at,
		Offset:      time.Duration(off),
		Uncertainty: time.Duration(rtt/2 + p.RadiusUs*1e3 + 1)}
}

// CleanScenarios are the worlds the bench runs clean for false alarms:
// Scenarios, and a cheap crystal next to an HVAC cycle (timing/simbench's
// (b)) on kernel PPS, whose PPS check judges by integrity.ClassXO, the
// class `--oscillator xo` configures.
func CleanScenarios() []Scenario {
	s := Scenarios()
	xo := s[0]
	xo.Name, xo.Seed = "xo-kernel-pps", 3
	xo.Osc = Oscillator{FreqPPB: 15e3, WhiteFM: 1, RandomWalk: 0.05, TempAmpPPB: 500, TempPeriodS: 1200}
	return append(s, xo)
}

// Scenarios are the bench's clean worlds.
func Scenarios() []Scenario {
	tcxo := Oscillator{FreqPPB: 3000, WhiteFM: 0.1, RandomWalk: 0.005, TempAmpPPB: 5, TempPeriodS: 4 * 3600}
	// Three stratum-1 NTS/Roughtime witnesses in the same metro area:
	// 150–400 µs one way, asymmetric paths, queueing jitter.
	wit := []WitnessPath{
		{Name: "w1", OneWayUs: 150, Asymmetry: 0.2, JitterUs: 40, RadiusUs: 30, ErrorUs: 5},
		{Name: "w2", OneWayUs: 250, Asymmetry: -0.15, JitterUs: 60, RadiusUs: 50, ErrorUs: -10},
		{Name: "w3", OneWayUs: 400, Asymmetry: 0.1, JitterUs: 80, RadiusUs: 40, ErrorUs: 0},
	}
	return []Scenario{
		{Name: "tcxo-kernel-pps", Osc: tcxo, PPSNoiseNs: 1e3, FixNoiseM: 2, Witnesses: wit, WitnessPoll: 64 * time.Second, Seed: 1},
		{Name: "tcxo-gpio-pps-spikes", Osc: tcxo, PPSNoiseNs: 10e3, SpikeProb: 0.01, FixNoiseM: 3, Witnesses: wit, WitnessPoll: 64 * time.Second, Seed: 2},
	}
}
