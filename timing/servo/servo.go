package servo

import (
	"errors"
	"math"
	"slices"

	"github.com/aunsorm/timenode/timing/bound"
)

// State is the servo's view of its own convergence, as in linuxptp.
type State int

// Servo states.
const (
	Unlocked     State = iota // collecting the first samples
	Jump                      // the caller must step the clock by Output.StepNs
	Locked                    // tracking
	LockedStable              // tracking, offsets consistently small
)

// String names the state for logs and tests.
func (s State) String() string {
	switch s {
	case Jump:
		return "jump"
	case Locked:
		return "locked"
	case LockedStable:
		return "locked_stable"
	default:
		return "unlocked"
	}
}

// Algorithm is a control law: given an offset sample it returns the absolute
// frequency correction to apply. Implementations hold no policy.
type Algorithm interface {
	// Sample feeds one offset (local minus reference, ns) taken at local
	// time localNs, and returns the frequency correction in ppb.
	Sample(offsetNs float64, localNs int64) (freqPPB float64)
	// Reset forgets all history, keeping the frequency given as the new
	// starting point (used after a step).
	Reset(freqPPB float64)
}

// Holder is implemented by algorithms that can tell which frequency to hold
// when samples stop: their estimate of the oscillator's frequency without
// any phase-correction term.
type Holder interface {
	HoldoverFrequency() float64
}

// Rejecter is implemented by algorithms that may discard a sample
// themselves (an innovation gate); the servo then reports it as Rejected.
type Rejecter interface {
	LastRejected() bool
}

// Clipper is implemented by algorithms that may take a sample at less than
// its face value (an early timestamp down-weighted at an innovation gate);
// the servo then reports it Clipped, so that the caller's other estimators
// can leave it out too.
type Clipper interface {
	// LastClipped reports whether the last sample was down-weighted.
	LastClipped() bool
}

// TempInput is implemented by algorithms that use an oscillator
// temperature reading.
type TempInput interface {
	SetTemperature(tempC float64)
}

// TempModel is implemented by algorithms that model the oscillator's
// frequency as a function of the temperature input.
type TempModel interface {
	// TemperatureTerm is the part of the oscillator's free-running
	// frequency (ppb) the model puts down to the temperature now.
	TemperatureTerm() float64
}

// Predictor is implemented by algorithms that keep a covariance: they
// tell the bound estimator what they predict of the clock, under every
// model of it their data cannot exclude.
type Predictor interface {
	// Predictions appends the predictions made with the last sample to
	// dst and returns it.
	Predictions(dst []bound.Prediction) []bound.Prediction
}

// Rememberer is implemented by algorithms that learn what outlives a
// restart (the Kalman bank's Memory).
type Rememberer interface {
	Memory() (Memory, bool)
	Seed(Memory) error
}

// FrequencyPriorer is implemented by algorithms that can start from a
// frequency an earlier run measured on the same clock (the Kalman bank).
type FrequencyPriorer interface {
	// SetFrequencyPrior offers the algorithm, just reset by the start,
	// the free-running frequency y (ppb) with standard deviation sigma.
	SetFrequencyPrior(y, sigma float64)
	// TakePriorVerdict returns, once, what it made of it.
	TakePriorVerdict() (PriorVerdict, bool)
}

// Output is the servo's answer to one sample.
type Output struct {
	State   State
	FreqPPB float64 // absolute frequency correction to apply
	StepNs  float64 // when State is Jump: step the clock by this (ns)
	// Rejected is set when the sample was discarded as a latency spike;
	// FreqPPB is then the holdover frequency.
	Rejected bool
	// Disagree is set, with Rejected, when a locked servo refused an
	// offset beyond the step threshold: the clock and the reference
	// disagree, and the caller must stop serving until they agree again
	// or the servo re-acquires (Config.RelockAfter).
	Disagree bool
	// Clipped is set when the algorithm took the sample at less than its
	// face value (Clipper): the sample steered the clock, but it is no
	// measurement of it.
	Clipped bool
}

// Servo applies the shared policy around an Algorithm:
//
//   - start: an offset beyond the step threshold is stepped at once (Jump)
//     and the start begins again (once a start sample was within the
//     threshold, far ones are refused as after lock). Config.StartSamples
//     samples (7 by default) are collected at the starting frequency, and
//     the frequency and phase estimated from all of them by medians
//     (Theil–Sen), so that a latency spike among them cannot set the start
//     (linuxptp uses the difference of the first two samples, which a spike
//     turns into hundreds of ppm); the frequency only as far as the
//     samples' scatter lets the line tell it (Config.StartFreqSigmaPPB).
//     The algorithm starts from that estimate, not from a raw sample, and
//     the servo is Locked;
//   - afterwards an offset beyond the step threshold is stepped if
//     Config.StepAfterLock, else refused (Disagree) until RelockAfter
//     consistent ones make the servo re-acquire with a step;
//   - latency spikes (late timestamps, so one-sided) are rejected;
//   - Locked after initialisation, LockedStable after StableCount
//     consecutive offsets within StableThresholdNs.
//
// Contract with the caller: apply Output.FreqPPB at once; if no sample
// follows within about a second, apply HoldoverFrequency until one does
// (never keep the last Output.FreqPPB through an outage: it carries a
// one-second phase correction). Pass localNs from a timebase that the
// servo's own steps do not move. Keep one Servo across outages: it models
// the gap and keeps what it has learnt (noise level, temperature
// coefficient).
type Servo struct {
	cfg       Config
	alg       Algorithm
	freq      float64
	locked    bool // has been locked at least once
	stableRun int
	samples   int
	started   bool      // the start is over: the algorithm is in charge
	committed bool      // a start sample within the step threshold came
	startOff  []float64 // the start's samples
	startNs   []int64
	lastNs    int64
	spikes    spikeFilter
	disagree  int     // consecutive offsets beyond the step threshold, refused
	lastFar   float64 // the last of them
	// freqPrior is a kept frequency for the start (SetFrequencyPrior).
	freqPrior *[2]float64
}

// SetFrequencyPrior offers the servo the oscillator's free-running
// frequency y (ppb, as Memory.FreqPPB) with standard deviation sigma, as
// an earlier run on the same clock measured it, grown over the gap since.
// The servo's start hands it to the algorithm, which judges it against
// its own measurement of the frequency once that can tell (the Kalman
// bank: after five minutes) and takes it in or drops it; the caller learns
// which from TakePriorVerdict. An algorithm that cannot take one ignores
// it, as does a servo that has started.
func (s *Servo) SetFrequencyPrior(y, sigma float64) {
	if _, ok := s.alg.(FrequencyPriorer); ok && !s.started {
		s.freqPrior = &[2]float64{y, sigma}
	}
}

// TakePriorVerdict returns, once, what the algorithm made of a frequency
// offered by SetFrequencyPrior; ok is false until it has judged one.
func (s *Servo) TakePriorVerdict() (v PriorVerdict, ok bool) {
	if p, isP := s.alg.(FrequencyPriorer); isP {
		return p.TakePriorVerdict()
	}
	return v, false
}

// New returns a servo with the given policy and algorithm, starting from the
// frequency correction freqPPB (what the clock has now).
func New(cfg Config, alg Algorithm, freqPPB float64) *Servo {
	alg.Reset(freqPPB)
	return &Servo{cfg: cfg, alg: alg, freq: freqPPB, spikes: newSpikeFilter(cfg)}
}

// Sample feeds one offset measurement (local minus reference, ns) taken at
// local time localNs.
func (s *Servo) Sample(offsetNs float64, localNs int64) Output {
	s.samples++
	gap := s.samples > 1 && localNs-s.lastNs > int64(s.cfg.SpikeResetGapS*1e9)
	s.lastNs = localNs
	if !s.started {
		return s.start(offsetNs, localNs)
	}
	if math.Abs(offsetNs) > s.cfg.StepThresholdNs {
		if s.locked && !s.cfg.StepAfterLock && !s.reacquire(offsetNs) {
			return Output{State: s.state(), FreqPPB: s.HoldoverFrequency(), Rejected: true, Disagree: true}
		}
		s.alg.Reset(s.freq)
		s.stableRun = 0
		s.spikes.reset()
		return Output{State: Jump, FreqPPB: s.freq, StepNs: -offsetNs}
	}
	s.disagree = 0
	s.locked = true
	if gap {
		s.spikes.reset()
	}
	if s.spikes.isSpike(offsetNs) {
		return Output{State: s.state(), FreqPPB: s.HoldoverFrequency(), Rejected: true}
	}
	f := s.clamp(s.alg.Sample(offsetNs, localNs))
	if r, ok := s.alg.(Rejecter); ok && r.LastRejected() {
		return Output{State: s.state(), FreqPPB: f, Rejected: true}
	}
	s.spikes.accept(offsetNs)
	s.freq = f
	if math.Abs(offsetNs) <= s.cfg.StableThresholdNs {
		s.stableRun++
	} else {
		s.stableRun = 0
	}
	out := Output{State: s.state(), FreqPPB: s.freq}
	if c, ok := s.alg.(Clipper); ok {
		out.Clipped = c.LastClipped()
	}
	return out
}

// start collects the first samples and, once it has StartSamples, hands
// the algorithm a robust estimate of the frequency and phase.
func (s *Servo) start(offsetNs float64, localNs int64) Output {
	if math.Abs(offsetNs) > s.cfg.StepThresholdNs {
		// Once a sample has agreed with the clock, a far one is refused
		// as after lock; otherwise (no latency spike is this large) it is
		// stepped at once and the start begins again on the stepped clock.
		if s.committed && !s.cfg.StepAfterLock && !s.reacquire(offsetNs) {
			return Output{State: Unlocked, FreqPPB: s.freq, Rejected: true, Disagree: true}
		}
		s.startOff, s.startNs = s.startOff[:0], s.startNs[:0]
		s.committed = false
		return Output{State: Jump, FreqPPB: s.freq, StepNs: -offsetNs}
	}
	s.disagree = 0
	s.committed = true
	s.startOff = append(s.startOff, offsetNs)
	s.startNs = append(s.startNs, localNs)
	if len(s.startOff) < max(2, s.cfg.StartSamples) {
		return Output{State: Unlocked, FreqPPB: s.freq}
	}
	drift, se := robustLine(s.startOff, s.startNs)
	if p := s.cfg.StartFreqSigmaPPB; p > 0 {
		// The drift's posterior mean under a prior N(0, p²) on it: a
		// line through millisecond jitter must not set the frequency.
		drift *= p * p / (p*p + se*se)
	}
	phase := phaseAt(s.startOff, s.startNs, drift)
	s.startOff, s.startNs = nil, nil
	s.started = true
	// All the start's samples were within the step threshold, so their
	// median phase is too, unless the frequency error carried it beyond.
	s.freq = s.clamp(s.freq - drift)
	s.alg.Reset(s.freq)
	if p := s.freqPrior; p != nil {
		s.freqPrior = nil
		s.alg.(FrequencyPriorer).SetFrequencyPrior(p[0], p[1])
	}
	if math.Abs(phase) > s.cfg.StepThresholdNs {
		// The algorithm starts from the stepped phase, zero by the
		// estimate, rather than from the next sample, which may be a
		// spike; it can judge that sample against its prediction.
		s.freq = s.clamp(s.alg.Sample(0, localNs))
		return Output{State: Jump, FreqPPB: s.freq, StepNs: -phase}
	}
	s.locked = true
	s.freq = s.clamp(s.alg.Sample(phase, localNs))
	return Output{State: Locked, FreqPPB: s.freq}
}

// robustLine fits off = phase + drift·(t − t_last) by Theil–Sen: drift is
// the median of the slopes between all pairs of samples (ns/s, i.e. ppb).
// Up to 29 % of the samples may be arbitrarily wrong; two of seven, say,
// may be latency spikes. se is the drift's standard error, from Sen's
// distribution-free interval: half the spread of the slopes between the
// ranks ±1σ of Kendall's statistic from their median, which the one or
// two spikes the median shrugs off do not inflate either.
func robustLine(off []float64, ns []int64) (drift, se float64) {
	var slopes []float64
	for i := range off {
		for j := i + 1; j < len(off); j++ {
			if dt := float64(ns[j]-ns[i]) / 1e9; dt > 0 {
				slopes = append(slopes, (off[j]-off[i])/dt)
			}
		}
	}
	if len(slopes) == 0 {
		return 0, 0
	}
	drift = median(slopes) // sorts them
	n := float64(len(off))
	c := math.Sqrt(n * (n - 1) * (2*n + 5) / 18) // σ of Kendall's S
	mid := float64(len(slopes)-1) / 2
	return drift, (rankValue(slopes, mid+c/2) - rankValue(slopes, mid-c/2)) / 2
}

// rankValue interpolates sorted v at the fractional index r, clamped to
// its ends.
func rankValue(v []float64, r float64) float64 {
	if r <= 0 {
		return v[0]
	}
	i := int(r)
	if i >= len(v)-1 {
		return v[len(v)-1]
	}
	f := r - float64(i)
	if f == 0 {
		return v[i]
	}
	return v[i]*(1-f) + v[i+1]*f
}

// phaseAt returns the median of the samples carried to the last one's
// time at drift (ppb).
func phaseAt(off []float64, ns []int64, drift float64) float64 {
	last := ns[len(ns)-1]
	carried := make([]float64, len(off))
	for i, o := range off {
		carried[i] = o + drift*float64(last-ns[i])/1e9
	}
	return median(carried)
}

// median returns the median of v (the mean of the middle two for an even
// length), reordering v.
func median(v []float64) float64 {
	slices.Sort(v)
	return rankValue(v, float64(len(v)-1)/2)
}

// reacquire counts a refused far offset and reports whether enough
// consistent ones have come to re-acquire.
func (s *Servo) reacquire(offsetNs float64) bool {
	if s.disagree > 0 && math.Abs(offsetNs-s.lastFar) > s.cfg.RelockAgreeNs {
		s.disagree = 0 // a different disagreement: start counting again
	}
	s.disagree++
	s.lastFar = offsetNs
	if s.cfg.RelockAfter <= 0 || s.disagree < s.cfg.RelockAfter {
		return false
	}
	s.disagree = 0
	return true
}

func (s *Servo) state() State {
	switch {
	case !s.locked:
		return Unlocked
	case s.stableRun >= s.cfg.StableCount:
		return LockedStable
	default:
		return Locked
	}
}

func (s *Servo) clamp(f float64) float64 {
	if lim := s.cfg.MaxFreqPPB; lim > 0 {
		return math.Max(-lim, math.Min(lim, f))
	}
	return f
}

// SetTemperature passes the oscillator temperature (°C) to the algorithm
// if it uses one; call it before Sample, and in holdover before
// HoldoverFrequency. It reports whether the algorithm uses it.
func (s *Servo) SetTemperature(tempC float64) bool {
	t, ok := s.alg.(TempInput)
	if ok {
		t.SetTemperature(tempC)
	}
	return ok
}

// TemperatureTerm is the algorithm's modelled temperature contribution to
// the oscillator's frequency (ppb) at the last temperature given, 0 if it
// models none. The holdover frequency cancels it along with the rest.
func (s *Servo) TemperatureTerm() float64 {
	if m, ok := s.alg.(TempModel); ok && s.started {
		return m.TemperatureTerm()
	}
	return 0
}

// Predictions appends the algorithm's predictions of the clock after the
// last sample (see Predictor) to dst; none while the servo starts or if
// the algorithm keeps no covariance.
func (s *Servo) Predictions(dst []bound.Prediction) []bound.Prediction {
	if p, ok := s.alg.(Predictor); ok && s.started {
		return p.Predictions(dst)
	}
	return dst
}

// Memory returns what the algorithm learnt that outlives a restart, if
// it keeps any (Rememberer) and has learnt it.
func (s *Servo) Memory() (Memory, bool) {
	if r, ok := s.alg.(Rememberer); ok && s.started {
		return r.Memory()
	}
	return Memory{}, false
}

// Seed gives the algorithm an earlier run's Memory.
func (s *Servo) Seed(m Memory) error {
	r, ok := s.alg.(Rememberer)
	if !ok {
		return errors.New("servo: the control law keeps no memory")
	}
	return r.Seed(m)
}

// Frequency is the last frequency correction returned.
func (s *Servo) Frequency() float64 { return s.freq }

// HoldoverFrequency is the correction to hold while no samples arrive: the
// algorithm's frequency estimate without its phase term if it offers one,
// else the last correction returned.
func (s *Servo) HoldoverFrequency() float64 {
	if h, ok := s.alg.(Holder); ok && s.started {
		return s.clamp(h.HoldoverFrequency())
	}
	return s.freq
}
