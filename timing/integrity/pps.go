package integrity

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Reasons of the PPS detector.
const (
	// ReasonPhaseStep: the phase moved against the oscillator by more
	// than the model allows over a few seconds (a time push or pull, a
	// meaconing takeover).
	ReasonPhaseStep = "phase_step"
	// ReasonFrequencyChange: the PPS frequency against the oscillator
	// changed by more than the model allows over minutes to hours (a
	// drag).
	ReasonFrequencyChange = "frequency_change"
	// ReasonFrequencyDrift: the CUSUM of the window statistic crossed
	// its threshold: a frequency ramp faster than the oscillator's
	// normal drift, too slow for one test to see.
	ReasonFrequencyDrift = "frequency_drift"
	// ReasonPPSMissing: no pulse for Config.MissingAfter (info: the
	// discipline holds over by itself).
	ReasonPPSMissing = "pps_missing"
	// ReasonPPSUnstable: many missing or duplicate pulses in the last
	// minute: a bouncing cable or connector.
	ReasonPPSUnstable = "pps_unstable"
)

// PPSReasons lists the PPS detector's reasons, and the holdover check's
// (HoldoverCheck), which judges the same pulses.
var PPSReasons = []string{ReasonPhaseStep, ReasonFrequencyChange, ReasonFrequencyDrift, ReasonPPSMissing, ReasonPPSUnstable,
	ReasonHoldoverDisagrees}

// PPSConfig configures a PPSDetector. Zero fields take the defaults.
type PPSConfig struct {
	// Model is the oscillator and timestamp noise (required).
	Model PowerLaw
	// K is the threshold in standard deviations (default 6; 24 h of the
	// bench's TCXO reach about 3.6 at worst).
	K float64
	// Octaves is how many lags τ = 1, 2, 4 … 2^(Octaves−1) s are tested
	// (default 13: up to 68 min, so a test spans at most 3.4 h).
	Octaves int
	// CUSUMAllowance and CUSUMThreshold tune the ramp CUSUM, in
	// standard deviations (defaults 1 and 12).
	CUSUMAllowance, CUSUMThreshold float64
	// MissingAfter is how long without a pulse reports pps_missing
	// (default 5 s).
	MissingAfter time.Duration
	// UnstableFraction of the last 64 s missing or duplicated reports
	// pps_unstable (default 0.25), when they come from at least
	// UnstableRuns separate events (gaps or duplicates; default 3): a
	// connector that bounces.
	// One long gap is a cut cable, which pps_missing reports and the
	// discipline's holdover handles; counting its seconds as instability
	// kept a node suspect for ten minutes after every long cut.
	UnstableFraction float64
	UnstableRuns     int
	// ClearAfter is how long the phase must agree again with the held
	// oscillator before an alarm clears (default 60 s).
	ClearAfter int
}

func (c PPSConfig) withDefaults() PPSConfig {
	if c.K <= 0 {
		c.K = 6
	}
	if c.Octaves <= 0 {
		c.Octaves = 13
	}
	if c.CUSUMAllowance <= 0 {
		c.CUSUMAllowance = 1
	}
	if c.CUSUMThreshold <= 0 {
		c.CUSUMThreshold = 12
	}
	if c.MissingAfter <= 0 {
		c.MissingAfter = 5 * time.Second
	}
	if c.UnstableFraction <= 0 {
		c.UnstableFraction = 0.25
	}
	if c.UnstableRuns <= 0 {
		c.UnstableRuns = 3
	}
	if c.ClearAfter <= 0 {
		c.ClearAfter = 60
	}
	return c
}

const (
	medianWindow = 7  // pulses in the latency-spike median
	medianNeed   = 5  // of which at least this many must exist
	maxFillGap   = 16 // seconds of missing median output bridged linearly
	unstableSpan = 64 // seconds over which missing/duplicate pulses count
)

// PPSDetector judges the PPS phase against the free-running oscillator.
//
// Input per pulse: the PPS phase against the oscillator, i.e. the measured
// PPS offset minus the offset predicted from the corrections applied and a
// frequency estimate held fixed (any fixed one: the tests cancel constant
// phase and frequency). The bound estimator reconstructs exactly this
// free-running phase. A servo's running prediction error is not suitable:
// a servo that follows a drag hides it.
//
// A running median of 7 pulses removes latency spikes. At every lag τ the
// detector tests D_τ = x̄₃ − 2x̄₂ + x̄₁ over three consecutive τ-second
// means against K standard deviations of the model plus the normal drift
// (phase_step for τ ≤ 8 s, frequency_change above), and runs a two-sided
// CUSUM over non-overlapping D_τ for ramps (frequency_drift). Once it has
// alarmed it holds the oscillator's line from before the alarm and keeps
// reporting while the phase disagrees with it, so the evidence lasts as
// long as GNSS stays away from the held oscillator (within what the
// oscillator could have drifted), not only during the transition.
type PPSDetector struct {
	cfg   PPSConfig
	stats []windowStat
	lags  []int

	// Raw pulses for the median.
	raw     []rawPulse
	lastSec int64
	started bool
	lastAt  time.Time
	// Missing or duplicate pulses: the seconds they concern, and one
	// entry per event (a gap of any length, or a duplicate) at its second.
	bad, badEvents []int64

	// Median output: prefix sums of the phase (relative to a reference
	// line) and of presence, in a ring indexed by second.
	ring     []float64 // prefix sum C(t)
	have     []int64   // which second each slot holds, −1 if none
	cnt      []int64   // prefix count of present samples
	top      int64     // newest second in the ring
	topX     float64   // newest median phase (relative)
	hasTop   bool
	refSet   bool
	refSec   int64
	refX     float64
	cusumPos []float64
	cusumNeg []float64

	// Held line after an alarm.
	held      bool
	heldSec   int64
	heldX     float64
	heldY     float64 // ns/s
	heldTau   int
	heldSF    float64 // held frequency's standard deviation, ns/s
	heldWhy   string
	agreeRuns int
	// heldExtra widens the held line's allowance (ns): what a line
	// carried across a restart does not know of the clock (Hold).
	heldExtra float64
	// heldAbs: a line given by Hold before the first median, whose
	// phase is absolute until the reference line is set.
	heldAbs bool
}

type rawPulse struct {
	sec int64
	x   float64
}

// NewPPSDetector returns a detector; cfg.Model is required.
func NewPPSDetector(cfg PPSConfig) *PPSDetector {
	cfg = cfg.withDefaults()
	d := &PPSDetector{cfg: cfg}
	for m := range cfg.Octaves {
		tau := 1 << m
		d.lags = append(d.lags, tau)
		d.stats = append(d.stats, cfg.Model.statFor(tau))
	}
	size := 3*d.lags[len(d.lags)-1] + 2
	d.ring = make([]float64, size)
	d.cnt = make([]int64, size)
	d.have = make([]int64, size)
	d.cusumPos = make([]float64, cfg.Octaves)
	d.cusumNeg = make([]float64, cfg.Octaves)
	d.reset()
	return d
}

// Model returns the noise model the detector judges against.
func (d *PPSDetector) Model() PowerLaw { return d.cfg.Model }

// SetModel makes the detector judge against m from the next pulse on,
// keeping its history, its CUSUMs and a held line (whose allowance then
// follows m too). The daemon uses it to calibrate the configured
// oscillator class with the stability the node measured (Calibrate).
func (d *PPSDetector) SetModel(m PowerLaw) {
	d.cfg.Model = m
	for i, tau := range d.lags {
		d.stats[i] = m.statFor(tau)
	}
	if d.held {
		d.heldSF = m.statFor(d.heldTau).sigma / float64(d.heldTau)
	}
}

// reset forgets the phase history (after an alarm clears: the history
// holds the attack).
func (d *PPSDetector) reset() {
	for i := range d.have {
		d.have[i] = -1
	}
	d.hasTop, d.refSet = false, false
	clear(d.cusumPos)
	clear(d.cusumNeg)
}

// Observe takes pulse sec (the local pulse count, not the receiver's
// label: a spoofer controls that) with phase phaseNs, seen at now.
func (d *PPSDetector) Observe(now time.Time, sec int64, phaseNs float64) []Evidence {
	if math.IsNaN(phaseNs) || math.IsInf(phaseNs, 0) {
		return nil
	}
	var evs []Evidence
	if d.started && sec <= d.lastSec {
		d.bad = append(d.bad, sec) // duplicate or out of order
		d.badEvents = append(d.badEvents, sec)
		return d.unstable(now, sec, evs)
	}
	if d.started && sec > d.lastSec+1 {
		for s := max(d.lastSec+1, sec-unstableSpan+1); s < sec; s++ {
			d.bad = append(d.bad, s)
		}
		d.badEvents = append(d.badEvents, sec-1) // one gap, however long
	}
	d.started, d.lastSec, d.lastAt = true, sec, now
	d.raw = append(d.raw, rawPulse{sec, phaseNs})
	for len(d.raw) > 0 && d.raw[0].sec <= sec-medianWindow {
		d.raw = d.raw[1:]
	}
	if len(d.raw) >= medianNeed {
		xs := make([]float64, len(d.raw))
		for i, p := range d.raw {
			xs[i] = p.x
		}
		slices.Sort(xs)
		med := xs[len(xs)/2]
		if len(xs)%2 == 0 {
			med = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
		}
		evs = d.addMedian(now, sec-medianWindow/2, med, evs)
	}
	return d.unstable(now, sec, evs)
}

func (d *PPSDetector) unstable(now time.Time, sec int64, evs []Evidence) []Evidence {
	i := 0
	for i < len(d.bad) && d.bad[i] <= sec-unstableSpan {
		i++
	}
	d.bad = d.bad[i:]
	i = 0
	for i < len(d.badEvents) && d.badEvents[i] <= sec-unstableSpan {
		i++
	}
	d.badEvents = d.badEvents[i:]
	frac := float64(len(d.bad)) / unstableSpan
	if frac <= d.cfg.UnstableFraction {
		return evs
	}
	if n := len(d.badEvents); n >= d.cfg.UnstableRuns {
		evs = append(evs, Evidence{At: now, Detector: DetectorPPS, Reason: ReasonPPSUnstable, Level: LevelSuspect,
			Values: map[string]float64{"bad_fraction": frac, "bad_events": float64(n), "window_s": unstableSpan}})
	}
	return evs
}

// Tick reports pps_missing when no pulse came for MissingAfter; call it
// periodically (every second or so).
func (d *PPSDetector) Tick(now time.Time) []Evidence {
	if !d.started {
		return nil
	}
	if gap := now.Sub(d.lastAt); gap >= d.cfg.MissingAfter {
		return []Evidence{{At: now, Detector: DetectorPPS, Reason: ReasonPPSMissing, Level: LevelInfo,
			Values: map[string]float64{"since_last_s": gap.Seconds()}}}
	}
	return nil
}

// Held reports whether the detector is holding the oscillator's line
// after an alarm.
func (d *PPSDetector) Held() bool { return d.held }

func (d *PPSDetector) slot(sec int64) int { return int(sec % int64(len(d.ring))) }

// at returns the prefix sum and count at sec, if the ring holds it.
func (d *PPSDetector) at(sec int64) (float64, int64, bool) {
	if sec < 0 {
		return 0, 0, false
	}
	i := d.slot(sec)
	if d.have[i] != sec {
		return 0, 0, false
	}
	return d.ring[i], d.cnt[i], true
}

// addMedian appends the median phase for second sec, bridging short gaps
// linearly so that one missed pulse does not blind the long lags.
func (d *PPSDetector) addMedian(now time.Time, sec int64, x float64, evs []Evidence) []Evidence {
	if !d.refSet {
		d.refSet, d.refSec, d.refX = true, sec, x
		if d.heldAbs {
			d.heldX, d.heldAbs = d.heldX-x, false
		}
	}
	rel := x - d.refX
	if d.hasTop && sec <= d.top {
		return evs
	}
	if d.hasTop && sec-d.top > 1 && sec-d.top <= maxFillGap {
		for s := d.top + 1; s < sec; s++ {
			f := float64(s-d.top) / float64(sec-d.top)
			evs = d.push(now, s, d.topX+f*(rel-d.topX), evs)
		}
	}
	return d.push(now, sec, rel, evs)
}

func (d *PPSDetector) push(now time.Time, sec int64, rel float64, evs []Evidence) []Evidence {
	prevC, prevN, ok := d.at(sec - 1)
	if !ok {
		prevC, prevN = 0, 0
	}
	i := d.slot(sec)
	d.ring[i], d.cnt[i], d.have[i] = prevC+rel, prevN+1, sec
	d.top, d.topX, d.hasTop = sec, rel, true
	if math.Abs(d.ring[i]) > 1e12 {
		// Keep the prefix sums small; only differences are used.
		off := d.ring[i]
		for j := range d.ring {
			d.ring[j] -= off
		}
	}
	if d.held {
		return d.checkHeld(now, sec, rel, evs)
	}
	return d.test(now, sec, evs)
}

// window returns D_τ at sec (ns) if all 3τ samples are present.
func (d *PPSDetector) window(sec int64, tau int) (float64, bool) {
	t := int64(tau)
	c0, n0, ok0 := d.at(sec)
	c1, _, ok1 := d.at(sec - t)
	c2, _, ok2 := d.at(sec - 2*t)
	c3, n3, ok3 := d.at(sec - 3*t)
	if !ok0 || !ok1 || !ok2 || !ok3 || n0-n3 != 3*t {
		return 0, false
	}
	return (c0 - 3*c1 + 3*c2 - c3) / float64(tau), true
}

// mean returns the mean phase over (sec−τ, sec].
func (d *PPSDetector) mean(sec int64, tau int) (float64, bool) {
	c0, n0, ok0 := d.at(sec)
	c1, n1, ok1 := d.at(sec - int64(tau))
	if !ok0 || !ok1 || n0-n1 != int64(tau) {
		return 0, false
	}
	return (c0 - c1) / float64(tau), true
}

func (d *PPSDetector) test(now time.Time, sec int64, evs []Evidence) []Evidence {
	for m, tau := range d.lags {
		D, ok := d.window(sec, tau)
		if !ok {
			continue
		}
		st := d.stats[m]
		excess := math.Abs(D) - st.drift
		if st.sigma > 0 && excess > d.cfg.K*st.sigma {
			why := ReasonFrequencyChange
			if tau <= 8 {
				why = ReasonPhaseStep
			}
			evs = append(evs, d.alarm(now, sec, tau, why, D, excess/st.sigma))
			return evs
		}
		if sec%int64(tau) != 0 || st.sigma <= 0 {
			continue
		}
		zp := (D - st.drift) / st.sigma
		zn := (-D - st.drift) / st.sigma
		d.cusumPos[m] = math.Max(0, d.cusumPos[m]+zp-d.cfg.CUSUMAllowance)
		d.cusumNeg[m] = math.Max(0, d.cusumNeg[m]+zn-d.cfg.CUSUMAllowance)
		if s := math.Max(d.cusumPos[m], d.cusumNeg[m]); s > d.cfg.CUSUMThreshold {
			evs = append(evs, d.alarm(now, sec, tau, ReasonFrequencyDrift, D, s))
			return evs
		}
	}
	return evs
}

// heldSpan is the longest window the held line's frequency is averaged
// over: long enough to average the timestamp noise away, short enough to
// lie in the ring before the alarm.
const heldSpan = 1024

// alarm starts holding the oscillator's line: the mean phase and frequency
// of two windows of up to heldSpan seconds that end 2·max(τ, 8) s before
// the alarm, before the windows that moved (and past the median's reach).
func (d *PPSDetector) alarm(now time.Time, sec int64, tau int, why string, D, z float64) Evidence {
	ev := Evidence{At: now, Detector: DetectorPPS, Reason: why, Level: LevelUntrusted,
		Values: map[string]float64{"tau_s": float64(tau), "d_ns": D, "z": z}}
	end := sec - 2*int64(max(tau, 8))
	for l := heldSpan; l >= 1; l /= 2 {
		x2, ok2 := d.mean(end, l)
		x1, ok1 := d.mean(end-int64(l), l)
		if ok1 && ok2 {
			d.heldY = (x2 - x1) / float64(l)
			// A window's mean sits at its centre, (l−1)/2 before its end.
			d.heldX = x2 + d.heldY*float64(l-1)/2
			d.heldSec, d.heldTau = end, l
			d.heldSF = d.cfg.Model.statFor(l).sigma / float64(l)
			break
		}
		if l == 1 {
			// No clean history at all: hold the newest phase, flat.
			d.heldSec, d.heldX, d.heldY, d.heldTau = sec, d.topX, 0, 1
			d.heldSF = d.cfg.Model.statFor(1).sigma
		}
	}
	d.held, d.heldWhy, d.agreeRuns, d.heldExtra = true, why, 0, 0
	// How far GNSS already is from the held line: what a node that
	// followed it up to now has taken in (the policy widens the bound by
	// it while the node holds over).
	e, allow := d.heldDeviation(sec, d.topX)
	ev.Values["held_error_ns"], ev.Values["allowed_ns"] = e, allow
	ev.Values["onset_s"] = float64(sec - d.heldSec)
	return ev
}

// heldDeviation returns the phase rel at sec minus the held line, and the
// error allowed there (see checkHeld).
func (d *PPSDetector) heldDeviation(sec int64, rel float64) (e, allow float64) {
	dt := float64(sec - d.heldSec)
	e = rel - d.heldX - d.heldY*dt
	m := d.cfg.Model
	l := float64(d.heldTau)
	sf := d.heldSF
	v := medianInflation*m.R + m.Qwf*dt + m.Qrw*dt*dt*dt/3 + (dt*sf)*(dt*sf)
	return e, d.cfg.K*math.Sqrt(v) + m.DriftPPBPerS*(dt+l)*(dt+l)/2 + d.heldExtra
}

// HeldLine is the oscillator line a PPS check holds after an alarm, in
// the frame of the phases it is given: phase X (ns) at pulse Sec, slope Y
// (ns per pulse), averaged over Tau pulses, held because of Why. ExtraNs
// widens what the check allows about it (a restart's uncertainty).
type HeldLine struct {
	Sec     int64   `json:"sec"`
	X       float64 `json:"x_ns"`
	Y       float64 `json:"y_ns_per_s"`
	Tau     int     `json:"tau_s"`
	Why     string  `json:"why"`
	ExtraNs float64 `json:"extra_ns,omitempty"`
}

// Validate reports what in l no PPS check could have held.
func (l HeldLine) Validate() error {
	for _, v := range []float64{l.X, l.Y, l.ExtraNs} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("held line %+v: want finite numbers", l)
		}
	}
	if l.Tau < 1 || l.Tau > heldSpan {
		return fmt.Errorf("held line averaged over %d pulses, want 1 to %d", l.Tau, heldSpan)
	}
	if l.ExtraNs < 0 {
		return fmt.Errorf("held line widened by %v ns, want none or more", l.ExtraNs)
	}
	if l.Why != ReasonPhaseStep && l.Why != ReasonFrequencyChange && l.Why != ReasonFrequencyDrift {
		return fmt.Errorf("held line for %q, want one of %s, %s, %s", l.Why, ReasonPhaseStep, ReasonFrequencyChange, ReasonFrequencyDrift)
	}
	return nil
}

// HeldLine returns the line the detector holds, if it holds one.
func (d *PPSDetector) HeldLine() (HeldLine, bool) {
	if !d.held {
		return HeldLine{}, false
	}
	x := d.heldX
	if !d.heldAbs {
		x += d.refX
	}
	return HeldLine{Sec: d.heldSec, X: x, Y: d.heldY, Tau: d.heldTau, Why: d.heldWhy, ExtraNs: d.heldExtra}, true
}

// Hold makes a detector that has seen no pulse hold l, as if it had
// alarmed on l.Why: the pulses it is then given are judged against l and
// reported while they disagree, until ClearAfter agree. The daemon uses
// it to keep the line across a restart, so that a restart does not let
// the check learn a new line from a spoofer's pulses.
func (d *PPSDetector) Hold(l HeldLine) error {
	if d.started {
		return errors.New("the PPS check has seen pulses: it holds its own line")
	}
	if err := l.Validate(); err != nil {
		return err
	}
	d.held, d.heldAbs, d.agreeRuns = true, true, 0
	d.heldSec, d.heldX, d.heldY, d.heldTau, d.heldWhy, d.heldExtra = l.Sec, l.X, l.Y, l.Tau, l.Why, l.ExtraNs
	d.heldSF = d.cfg.Model.statFor(l.Tau).sigma / float64(l.Tau)
	return nil
}

// checkHeld compares the phase with the held line. The allowed error is K
// standard deviations of the extrapolation (timestamp noise, the model's
// white and random-walk FM over the time held, the held frequency's own
// error over its window) plus the normal drift over the window and the
// time held.
func (d *PPSDetector) checkHeld(now time.Time, sec int64, rel float64, evs []Evidence) []Evidence {
	e, allow := d.heldDeviation(sec, rel)
	dt := float64(sec - d.heldSec)
	if math.Abs(e) > allow {
		d.agreeRuns = 0
		return append(evs, Evidence{At: now, Detector: DetectorPPS, Reason: d.heldWhy, Level: LevelUntrusted,
			Values: map[string]float64{"held_error_ns": e, "allowed_ns": allow, "held_s": dt, "onset_s": dt}})
	}
	d.agreeRuns++
	if d.agreeRuns >= d.cfg.ClearAfter {
		d.held = false
		d.reset()
	}
	return evs
}
