package bound

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Config tunes the Estimator. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// K is the coverage factor applied to the estimated standard deviation
	// (4 ⇒ 99.994 % for a Gaussian error; the margin absorbs model error).
	K float64
	// Prior is the noise model used until the Allan fit has data: wide on
	// purpose, so the first bounds are loose rather than wrong.
	Prior Noise
	// PriorSigmaY is the oscillator's assumed Allan deviation (ppb, flat in
	// τ) before any is measured; it only matters in a holdover that starts
	// in the first minute.
	PriorSigmaY float64
	// MinQrw is the least random-walk frequency noise (ppb²/s) the
	// tracking filter assumes, whatever the fit says: with none at all it
	// would trust its frequency forever and lag, overconfident, behind
	// wander too slow for the Allan estimate to have seen yet. The default
	// (0.001 ppb²/s, σy ≈ 0.02 ppb at τ = 1 s from this term) is below any
	// crystal oscillator a PPS appliance would carry.
	MinQrw float64
	// InitialFreqSigma is the a-priori uncertainty of the free-running
	// frequency (ppb): the kernel's range by default.
	InitialFreqSigma float64
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		K:                4,
		Prior:            Noise{R: 100e3 * 100e3, Qwf: 100, Qrw: 1},
		PriorSigmaY:      1000,
		InitialFreqSigma: 500e3,
		MinQrw:           0.001,
	}
}

// maxNISTerm caps one sample's normalised innovation squared in the
// model-error estimate (a 10σ innovation): the inflation it applies to the
// variance is at most this factor, whatever a single outlier did.
const maxNISTerm = 100

// nisAlpha is the weight of each sample in the running mean of the
// normalised innovation power.
const nisAlpha = 1.0 / 64

// minR is the least white phase noise (ns²) the tracking filter assumes,
// the order of the timestamps' one-nanosecond resolution.
const minR = 1

// Estimator tracks the clock's free-running phase (measured offsets with the
// caller's corrections taken out), measures its stability online and
// publishes an error bound. Feed it, in local-time order:
//
//   - AddSample for every offset the servo accepted, with the frequency
//     correction applied from that sample on;
//   - SetFrequency whenever the correction changes between samples (for
//     example the holdover frequency);
//   - Step when the clock is stepped.
//
// Local times must come from a timebase the steps do not move (for example
// CLOCK_MONOTONIC at the pulse edge): the estimator measures intervals and
// its Allan grid with them. It is not safe for concurrent use.
type Estimator struct {
	cfg    Config
	allan  *Allan
	filter PhaseFilter
	noise  Noise
	fitted bool

	started  bool
	originNs int64
	lastNs   int64
	samples  int

	ctl     float64 // control phase (ns) steered in up to ctlAtNs
	ctlAtNs int64
	freq    float64 // correction in effect since ctlAtNs (ppb)

	nis float64 // running mean of normalised innovation squared

	sampleCtl float64      // ctl at the last sample
	preds     []Prediction // the servo's models of the clock (SetPredictions)
	predNs    int64        // the sample they were made at
	predCtl   float64      // ctl at that sample

	wander wander // the free-running frequency's history
	// seedBlocks is a kept history, placed at the first sample.
	seedBlocks []FrequencyBlock
}

// NewEstimator returns an estimator with the given configuration.
func NewEstimator(cfg Config) *Estimator {
	d := DefaultConfig()
	if cfg.K <= 0 {
		cfg.K = d.K
	}
	if cfg.Prior == (Noise{}) {
		cfg.Prior = d.Prior
	}
	if cfg.PriorSigmaY <= 0 {
		cfg.PriorSigmaY = d.PriorSigmaY
	}
	if cfg.MinQrw <= 0 {
		cfg.MinQrw = d.MinQrw
	}
	if cfg.InitialFreqSigma <= 0 {
		cfg.InitialFreqSigma = d.InitialFreqSigma
	}
	return &Estimator{cfg: cfg, allan: NewAllan(), noise: cfg.Prior, nis: 1}
}

// advance integrates the applied correction up to localNs.
func (e *Estimator) advance(localNs int64) {
	if localNs > e.ctlAtNs {
		e.ctl += e.freq * float64(localNs-e.ctlAtNs) / 1e9
		e.ctlAtNs = localNs
	}
}

// SetFrequency records that the clock runs with correction freqPPB from
// localNs on.
func (e *Estimator) SetFrequency(localNs int64, freqPPB float64) {
	e.advance(localNs)
	e.freq = freqPPB
}

// Step records that the clock was stepped by stepNs at localNs (the offset
// changes by stepNs).
func (e *Estimator) Step(localNs int64, stepNs float64) {
	e.advance(localNs)
	e.ctl += stepNs
	e.preds = e.preds[:0]
}

// ctlAt returns the control phase (ns) steered in up to localNs.
func (e *Estimator) ctlAt(localNs int64) float64 {
	if localNs > e.ctlAtNs {
		return e.ctl + e.freq*float64(localNs-e.ctlAtNs)/1e9
	}
	return e.ctl
}

// AddSample records an accepted offset measurement (local − reference, ns)
// taken at localNs, and the frequency correction applied from then on.
func (e *Estimator) AddSample(localNs int64, offsetNs float64, freqPPB float64) {
	if !e.started {
		e.started, e.originNs, e.ctlAtNs = true, localNs, localNs
		e.freq = freqPPB
		e.filter = PhaseFilter{R: e.noise.R, Qwf: e.noise.Qwf, Qrw: e.noise.Qrw}
		e.filter.Init(offsetNs-e.ctl, math.Sqrt(e.noise.R), 0, e.cfg.InitialFreqSigma)
		e.lastNs, e.samples = localNs, 1
		e.allan.Add(0, offsetNs-e.ctl)
		e.wander.seed(e.seedBlocks, localNs)
		e.seedBlocks = nil
		e.wander.add(localNs, offsetNs-e.ctl)
		e.sampleCtl = e.ctl
		return
	}
	e.advance(localNs)
	p := offsetNs - e.ctl
	if dt := float64(localNs-e.lastNs) / 1e9; dt > 0 {
		e.filter.Predict(dt, 0)
	}
	innov, s := e.filter.Innovation(p)
	if e.samples >= 8 && s > 0 {
		// Each term is clipped: the running mean measures how far the
		// noise model is off, and one timestamp far outside it (a late
		// or early edge the servo let through) is an outlier, not model
		// error. Unclipped, one 12 ms outlier divided by the few hundred
		// ns² a fit without white phase noise predicts made nis 1e9 and
		// more, which multiplied every later variance for hours: bounds
		// of minutes to days while LOCKED with microseconds of error.
		e.nis += nisAlpha * (math.Min(innov*innov/s, maxNISTerm) - e.nis)
	}
	e.filter.Update(p)
	sec := int64(math.Round(float64(localNs-e.originNs) / 1e9))
	e.allan.Add(sec, p)
	e.wander.add(localNs, p)
	e.samples++
	if e.samples%16 == 0 {
		e.refit()
	}
	e.lastNs, e.sampleCtl = localNs, e.ctl
	e.freq = freqPPB
}

// refit fits the noise model to the Allan statistics and gives it to the
// tracking filter, if they back one.
func (e *Estimator) refit() {
	n, ok := e.allan.Fit()
	if !ok {
		return
	}
	// Timestamps are never exact: with R = 0 the filter takes each one
	// for the truth and its innovation variance can reach 0 (then nis
	// and the state are NaN).
	n.R = math.Max(n.R, minR)
	n.Qrw = math.Max(math.Max(n.Qrw, e.cfg.MinQrw), math.Max(e.wanderFloor(n), e.wanderUpper(n)))
	e.noise, e.fitted = n, true
	e.filter.R, e.filter.Qwf, e.filter.Qrw = n.R, n.Qwf, n.Qrw
}

// Stability returns the Allan statistics measured so far, for a node to
// keep across a restart.
func (e *Estimator) Stability() Stability { return e.allan.stats() }

// SeedStability starts the estimator from the Allan statistics an earlier
// run of the same oscillator measured (Stability), before its first
// sample: the noise model is fitted from them at once, and new terms add
// to them. Without them a restarted node measures its longest averaging
// times afresh, and until it has (hours), the wander those cannot
// exclude makes its holdover bound grow faster: in the timing bench a
// TCXO restarted 30 minutes before losing the sky served 7.4 h of
// holdover afresh and 15.3 h with its sums kept (the servo's memory
// gives the rest, to the unrestarted node's 34 h). What guards against sums that
// no longer describe the oscillator is the model-error power: samples
// that miss the seeded model's predictions inflate the bound and
// withdraw the servo's predictions within a minute or so.
func (e *Estimator) SeedStability(s Stability) error {
	if e.started {
		return errors.New("bound: stability seeded after the first sample")
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("bound: seeded stability: %w", err)
	}
	e.allan.sum, e.allan.n = s.Sum, s.N
	e.refit()
	return nil
}

// FrequencyHistory returns the history of the oscillator's free-running
// frequency the holdover bound is limited by, for a node to keep across a
// restart (FrequencyHistory.Blocks).
func (e *Estimator) FrequencyHistory() FrequencyHistory {
	return FrequencyHistory{blocks: e.wander.blocks[:len(e.wander.blocks):len(e.wander.blocks)], lastNs: e.lastNs}
}

// SeedFrequencyHistory starts the estimator from the frequency history an
// earlier run of the same oscillator kept (FrequencyHistory.Blocks),
// before its first sample: its blocks are placed as if that run's last
// sample were this one's first (the minutes of a restart are not
// counted), and new blocks add to them. Without it a restarted node's
// holdover bound is not limited by the history until it has measured
// wanderMinBlocks blocks afresh (2.3 h).
func (e *Estimator) SeedFrequencyHistory(bs []FrequencyBlock) error {
	if e.started {
		return errors.New("bound: frequency history seeded after the first sample")
	}
	if err := ValidateFrequencyBlocks(bs); err != nil {
		return fmt.Errorf("bound: seeded frequency history: %w", err)
	}
	e.seedBlocks = slices.Clone(bs)
	return nil
}

// Outlier records a sample the caller leaves out because the servo took it
// at less than face value (an early edge down-weighted at its gate). It
// counts in the model-error power as the largest innovation does: that
// withdraws the servo's predictions, whose filters the sample still moved,
// and widens the estimator's own bound until the power decays, without
// moving the estimator's filter or its Allan fit with a timestamp that
// measured nothing.
func (e *Estimator) Outlier() {
	if e.samples >= 8 {
		e.nis += nisAlpha * (maxNISTerm - e.nis)
	}
}

// Offset returns the estimated offset (ns) at atLocalNs and its standard
// deviation, including model-error inflation and oscillator wander since the
// last sample. ok is false before the first sample.
func (e *Estimator) Offset(atLocalNs int64) (offsetNs, sigmaNs float64, ok bool) {
	if !e.started {
		return 0, 0, false
	}
	dt := math.Max(0, float64(atLocalNs-e.lastNs)/1e9)
	f := e.filter
	x := f.X + f.Y*dt + e.ctlAt(atLocalNs)
	v := (f.Pxx + 2*dt*f.Pxy + dt*dt*f.Pyy) * math.Max(1, e.nis)
	v += dt * dt * e.oscAVAR(dt)
	return x, math.Sqrt(v), true
}

// Bound returns the error bound at local time atLocalNs: valid while
// locked and in holdover, and the wider the longer since the last sample.
// It is |x̂| + K·σ of the estimator's own filter or, if smaller, the bound
// the servo's predictions imply (SetPredictions). Before the first sample
// it returns the largest Duration.
func (e *Estimator) Bound(atLocalNs int64) time.Duration {
	x, sigma, ok := e.Offset(atLocalNs)
	if !ok {
		return time.Duration(math.MaxInt64)
	}
	b := math.Abs(x) + e.cfg.K*sigma
	if pb, ok := e.predBound(atLocalNs); ok {
		b = math.Min(b, pb)
	}
	b = math.Ceil(b)
	if b >= math.MaxInt64 || math.IsNaN(b) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(b)
}

// Noise returns the current fitted noise model and whether it comes from
// measurements (false: still the prior).
func (e *Estimator) Noise() (Noise, bool) { return e.noise, e.fitted }

// FrequencyPPB returns the estimated free-running frequency error of the
// oscillator (ppb); the correction that cancels it is its negative.
func (e *Estimator) FrequencyPPB() float64 { return e.filter.Y }

// wanderSigmas is the one-sided confidence (in standard errors of the
// Allan variance estimate) of the wander that wanderUpper cannot exclude.
const wanderSigmas = 2

// wanderUpper returns the largest random-walk frequency noise (ppb²/s)
// the measured Allan variance cannot exclude: at each octave from 16 s up,
// the variance's upper confidence limit (wanderSigmas standard errors,
// relative standard error √(2τ/terms)) less the white-noise terms, taken
// as random walk; the tightest octave decides. Where timestamp noise
// dominates every octave measured (50 µs of it, say), hours of wander
// hide under it, and a bound that assumed none under-covered holdovers
// (two thirds of an hour's seconds in one of 100 bench seeds) and locked
// seconds (0.1 %). It is +Inf until an octave is measured.
func (e *Estimator) wanderUpper(n Noise) float64 {
	upper := math.Inf(1)
	for m := 4; m < Octaves; m++ {
		v, ok := e.allan.AVAR(m)
		if !ok {
			continue
		}
		t := float64(int64(1) << m)
		ucl := v * (1 + wanderSigmas*math.Sqrt(2*t/e.allan.n[m]))
		upper = math.Min(upper, 3*math.Max(0, ucl-3*n.R/(t*t)-n.Qwf/t)/t)
	}
	if math.IsInf(upper, 1) {
		return 0
	}
	return upper
}

// wanderFloor returns the smallest random-walk frequency noise (ppb²/s)
// that explains the measured Allan variance at every octave from 16 s up,
// after the white-noise terms are taken out, where the excess is
// significant. Frequency wander that is not a
// random walk (a temperature cycle, a drift) would otherwise be fitted as
// none at all, and a filter that believes the frequency never moves grows
// overconfident while it lags behind.
func (e *Estimator) wanderFloor(n Noise) float64 {
	floor := 0.0
	for m := 4; m < Octaves; m++ {
		v, ok := e.allan.AVAR(m)
		if !ok {
			continue
		}
		t := float64(int64(1) << m)
		excess := v - 3*n.R/(t*t) - n.Qwf/t
		// Only wander that stands out of the estimate's own scatter
		// (relative standard error about √(τ/terms)) counts.
		if excess <= 3*v*math.Sqrt(t/e.allan.n[m]) {
			continue
		}
		floor = math.Max(floor, 3*excess/t)
	}
	return floor
}

// Checkpoint is the estimator's tracking state at one sample, to return
// to with Restore: the tracking filter, and what the estimator had
// learnt of the oscillator by then (the Allan statistics, the fitted
// noise model and the model-error power).
type Checkpoint struct {
	filter PhaseFilter
	lastNs int64
	sec    int64 // the sample's second in the Allan ring
	allan  Stability
	noise  Noise
	fitted bool
	nis    float64
}

// Checkpoint returns the tracking state as of the last sample; ok is false
// before the first.
func (e *Estimator) Checkpoint() (Checkpoint, bool) {
	return Checkpoint{filter: e.filter, lastNs: e.lastNs, sec: int64(math.Round(float64(e.lastNs-e.originNs) / 1e9)),
		allan: e.allan.stats(), noise: e.noise, fitted: e.fitted, nis: e.nis}, e.started
}

// Restore returns the estimator to cp: the free-running phase and
// frequency as they were at that sample, their uncertainty growing from
// there, as if no sample had come since. It is for samples found
// afterwards to have followed a false reference (a spoofed GNSS): the
// corrections steered since stay counted (the control phase is
// cumulative), so the offset it estimates is the clock's against the
// reference as it was before. What those samples taught about the
// oscillator goes too, and the servo's predictions made since are
// withdrawn: a reference dragged at 1 µs/s is a 1 ppm frequency step to
// the Allan statistics, whose variance then widened the holdover bound
// by 0.6 µs per second (the integrity bench's witnesses-only drag). The
// roll back trusts the evidence that GNSS was false; had the oscillator
// itself jumped meanwhile, the holdover from cp misses that jump in its
// frequency and in its bound alike.
func (e *Estimator) Restore(cp Checkpoint) {
	if !e.started || cp.lastNs > e.lastNs {
		return
	}
	e.filter, e.lastNs = cp.filter, cp.lastNs
	e.allan.rewind(cp.allan, cp.sec)
	e.wander.rewind(cp.lastNs)
	e.noise, e.fitted, e.nis = cp.noise, cp.fitted, cp.nis
	e.preds = e.preds[:0]
}
