package timing

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/timing/bound"
	"github.com/aunsorm/timenode/timing/leap"
	"github.com/aunsorm/timenode/timing/servo"
)

// Config is the discipline's policy.
type Config struct {
	// Stratum claimed while servable (NTP_STRATUM, default 1).
	Stratum uint8
	// StepThreshold: offsets above it are stepped before the first lock
	// (128 ms default); after it the servo's policy refuses them and the
	// node stops serving, until a few consistent ones make it re-acquire.
	StepThreshold time.Duration
	// LockThreshold and LockSamples: LOCKED after this many consecutive
	// offsets within the threshold; UnlockSamples consecutive accepted
	// offsets above UnlockThreshold drop back to ACQUIRING (hysteresis).
	// One late sample that the spike filter let through is carried by the
	// error bound; it must not take a locked node out of service.
	LockThreshold   time.Duration
	LockSamples     int
	UnlockThreshold time.Duration
	UnlockSamples   int
	// HoldoverAfter without an accepted sample moves LOCKED to HOLDOVER.
	HoldoverAfter time.Duration
	// MaxHoldoverBound: past this error bound the node is UNSYNCHRONIZED
	// and stops claiming its stratum.
	MaxHoldoverBound time.Duration
	// MinNMEADelay and MaxNMEADelay bound when, after its edge, a second's
	// sentences may start arriving; outside the window the label is
	// ambiguous and the pulse is refused.
	MinNMEADelay, MaxNMEADelay time.Duration
	// NMEAOnlyStratum, when not 0, lets a node that lost its PPS but
	// keeps a valid fix serve NMEA-only time at this stratum, with a bound
	// of milliseconds, as long as that bound stays within NMEAOnlyMaxBound.
	NMEAOnlyStratum  uint8
	NMEAOnlyMaxBound time.Duration
	// Leap is the leap second schedule (leap-seconds.list); nil means no
	// leap seconds are announced and TAI-UTC is unknown.
	Leap *leap.Schedule
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Stratum:          1,
		StepThreshold:    128 * time.Millisecond,
		LockThreshold:    20 * time.Microsecond,
		LockSamples:      5,
		UnlockThreshold:  200 * time.Microsecond,
		UnlockSamples:    3,
		HoldoverAfter:    2500 * time.Millisecond,
		MaxHoldoverBound: time.Millisecond,
		MinNMEADelay:     20 * time.Millisecond,
		MaxNMEADelay:     980 * time.Millisecond,
		NMEAOnlyMaxBound: 50 * time.Millisecond,
	}
}

// Rejection reasons, used as metric labels.
const (
	RejectNoFix     = "no_fix"
	RejectNoPulse   = "no_pulse"
	RejectAmbiguous = "ambiguous"
	RejectDisagree  = "disagrees_with_clock"
	RejectDuplicate = "duplicate_label"
	RejectJump      = "label_discontinuity"
	RejectSpike     = "latency_spike"
	RejectMislabel  = "prediction_refuted"
)

// maxUnconfirmed is how many edges may be labelled ahead of their NMEA.
const maxUnconfirmed = 3

// Discipline steers a clock from PPS edges labelled by NMEA. Its methods
// other than Status must be called from one goroutine (Run does that).
type Discipline struct {
	cfg   Config
	clk   clock.Steerable
	servo *servo.Servo
	est   *bound.Estimator
	log   *slog.Logger
	// stepNs is the sum of the steps applied: subtracted from local
	// timestamps it gives the servo and the estimator a timebase that
	// our own steps do not move.
	stepNs int64

	status   atomic.Pointer[Status]
	rejected [8]atomic.Uint64
	beat     atomic.Int64 // Unix ns of the last tick handled by Run

	pulses    []pps.Pulse // recent unlabelled edges, oldest first
	lastLabel time.Time
	lastEdge  time.Time // local time of the edge lastLabel named
	breaks    int       // consecutive samples that broke label continuity
	// Edges labelled by continuity at arrival, waiting for their NMEA to
	// confirm the label; after maxUnconfirmed of them the discipline stops
	// predicting and waits for NMEA again.
	awaiting   []labelled
	fixValid   bool       // the last fix was valid
	delay      delayStats // this receiver's NMEA delay after the edge
	nmea       nmeaOnly   // the fallback when PPS is lost
	confirmd   time.Time  // the last label a fix confirmed
	cur        Status
	inLock     int // consecutive samples within LockThreshold
	outOfLock  int // consecutive accepted samples above UnlockThreshold
	everLock   bool
	recovering bool // in HOLDOVER with samples again, re-acquiring
	offsets    window
	freqs      window
}

// New returns a discipline for clk. The servo starts from the clock's
// current frequency correction.
func New(cfg Config, clk clock.Steerable, log *slog.Logger) *Discipline {
	f, err := clk.Frequency()
	if err != nil {
		f = 0
	}
	sc := servo.DefaultConfig()
	sc.StepThresholdNs = float64(cfg.StepThreshold)
	d := &Discipline{
		cfg:     cfg,
		clk:     clk,
		servo:   servo.New(sc, servo.NewKalman(servo.DefaultKalmanConfig()), f),
		est:     bound.NewEstimator(bound.DefaultConfig()),
		log:     log.With("component", "timing"),
		offsets: newWindow(16),
	}
	d.cur = Status{State: Freerun, Stratum: 16, FrequencyPPB: f, MaxBound: cfg.MaxHoldoverBound, Reason: "waiting for GNSS"}
	d.publish()
	return d
}

// Status returns the latest published snapshot. Safe for concurrent use.
func (d *Discipline) Status() *Status { return d.status.Load() }

// Rejected returns how many pulses were refused for reason (one of the
// Reject* constants).
func (d *Discipline) Rejected(reason string) uint64 {
	if i := reasonIndex(reason); i >= 0 {
		return d.rejected[i].Load()
	}
	return 0
}

// RejectReasons lists the reasons Rejected knows.
func RejectReasons() []string {
	return []string{RejectNoFix, RejectNoPulse, RejectAmbiguous, RejectDisagree, RejectDuplicate, RejectJump, RejectSpike, RejectMislabel}
}

func reasonIndex(r string) int {
	for i, n := range RejectReasons() {
		if n == r {
			return i
		}
	}
	return -1
}

func (d *Discipline) reject(reason string, attrs ...any) {
	d.rejected[reasonIndex(reason)].Add(1)
	d.log.Debug("sample rejected", append([]any{"reason", reason}, attrs...)...)
}

// Run consumes pulses and fixes until ctx is done, and re-evaluates the
// state every tick so holdover is entered without new input.
func (d *Discipline) Run(ctx context.Context, pulses <-chan pps.Pulse, fixes <-chan gnss.Fix, tick <-chan time.Time) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-pulses:
			d.HandlePulse(p)
		case f := <-fixes:
			d.HandleFix(f)
		case t := <-tick:
			d.beat.Store(t.UnixNano())
			d.Tick()
		}
	}
}

// LastTick returns the time of the last tick Run handled: a liveness signal
// for the service watchdog (the loop is stuck if it stops advancing).
func (d *Discipline) LastTick() time.Time { return time.Unix(0, d.beat.Load()) }

// HandlePulse labels an edge at once when the labels so far make its
// second certain (the previous edge was labelled, and this one is a whole
// number of seconds later), so the servo's correction takes effect at the
// edge as its model assumes; the NMEA for that second must then confirm
// the label. Otherwise the edge waits for the NMEA to name its second.
func (d *Discipline) HandlePulse(p pps.Pulse) {
	if n := len(d.pulses); n > 0 && !p.Local.After(d.pulses[n-1].Local.Add(d.cfg.MinNMEADelay)) {
		// A second edge within a few ms of the previous one: a double edge.
		return
	}
	if !d.lastEdge.IsZero() && !p.Local.After(d.lastEdge.Add(d.cfg.MinNMEADelay)) {
		return // a double edge right after a labelled one
	}
	if label, ok := d.predict(p); ok {
		d.awaiting = append(d.awaiting, labelled{label: label, edge: p.Local})
		d.lastLabel, d.lastEdge = label, p.Local
		d.sample(p, p.Local.Sub(label))
		return
	}
	d.pulses = append(d.pulses, p)
	if len(d.pulses) > 4 {
		d.pulses = d.pulses[len(d.pulses)-4:]
	}
}

// predict labels p by continuity with the last labelled edge: only with a
// valid fix, an edge 1-2 whole seconds after it (within 1 ms, far above
// any oscillator error over two seconds), and few labels unconfirmed.
func (d *Discipline) predict(p pps.Pulse) (time.Time, bool) {
	if d.lastEdge.IsZero() || !d.fixValid || len(d.awaiting) >= maxUnconfirmed {
		return time.Time{}, false
	}
	gap := p.Local.Sub(d.lastEdge)
	n := gap.Round(time.Second)
	if n < time.Second || n > 2*time.Second || abs(gap-n) > time.Millisecond {
		return time.Time{}, false
	}
	return d.lastLabel.Add(n), true
}

// confirm matches a fix against the labels given ahead of it. It reports
// whether the fix was one of them (and so needs no pairing).
func (d *Discipline) confirm(f gnss.Fix) bool {
	if len(d.awaiting) == 0 {
		return false
	}
	if !d.confirmd.IsZero() && !f.UTC.After(d.confirmd) {
		d.reject(RejectDuplicate, "utc", f.UTC)
		return true
	}
	for i, a := range d.awaiting {
		if f.UTC.Equal(a.label) {
			d.awaiting = d.awaiting[i+1:]
			d.confirmd = a.label
			d.delay.add(f.Received.Sub(a.edge))
			return true
		}
	}
	if f.UTC.Before(d.awaiting[0].label) {
		return true // NMEA for an edge labelled before prediction began
	}
	// The receiver names a second we did not predict: our labels are
	// wrong, or the receiver jumped. Stop predicting and re-pair.
	d.reject(RejectMislabel, "utc", f.UTC, "predicted", d.awaiting[0].label)
	d.awaiting = d.awaiting[:0]
	d.lastEdge, d.lastLabel = time.Time{}, time.Time{}
	return false
}

// HandleFix confirms a label given ahead of the NMEA, or labels the edge
// that preceded the fix's first byte with the fix's UTC second and feeds
// the offset to the servo.
func (d *Discipline) HandleFix(f gnss.Fix) {
	d.fixValid = f.Valid
	if !f.Valid {
		d.awaiting = d.awaiting[:0]
		d.reject(RejectNoFix, "utc", f.UTC)
		d.setReason("GNSS receiver has no valid fix")
		return
	}
	if f.UTC.Nanosecond() != 0 {
		return // a sub-second epoch of a fast receiver names no edge
	}
	if d.confirm(f) {
		return
	}
	idx := -1
	for i := len(d.pulses) - 1; i >= 0; i-- {
		if !d.pulses[i].Local.After(f.Received) {
			idx = i
			break
		}
	}
	if idx < 0 {
		if d.cfg.NMEAOnlyStratum != 0 && (d.cur.State == Holdover || d.cur.State == Unsynchronized) {
			d.nmeaSample(f)
			return
		}
		d.reject(RejectNoPulse, "utc", f.UTC)
		d.setReason("no PPS edge before NMEA")
		return
	}
	p := d.pulses[idx]
	d.pulses = d.pulses[idx+1:]
	delay := f.Received.Sub(p.Local)
	if lo, hi := d.delayWindow(); delay < lo || delay > hi {
		d.reject(RejectAmbiguous, "utc", f.UTC, "nmea_delay_ms", delay.Milliseconds())
		return
	}
	if !f.UTC.After(d.lastLabel) {
		d.reject(RejectDuplicate, "utc", f.UTC)
		return
	}
	if !d.continuous(p, f.UTC) {
		d.reject(RejectJump, "utc", f.UTC, "last_utc", d.lastLabel)
		return
	}
	offset := p.Local.Sub(f.UTC)
	d.lastLabel, d.lastEdge, d.confirmd = f.UTC, p.Local, f.UTC
	d.delay.add(delay)
	d.sample(p, offset)
}

// continuous checks that labels advance exactly as the edges do: between
// two accepted edges n local seconds apart the labels must differ by n
// seconds. A late-delivered sentence that would pair an edge with the
// previous second's label is caught here, before it can cause a one-second
// step. Three breaks in a row mean the earlier label was the wrong one, so
// continuity restarts from the new pair.
func (d *Discipline) continuous(p pps.Pulse, utc time.Time) bool {
	if d.lastEdge.IsZero() {
		return true
	}
	gap := p.Local.Sub(d.lastEdge)
	if gap <= 0 || gap > 30*time.Second {
		return true // too far apart to say; the other checks decide
	}
	want := d.lastLabel.Add(gap.Round(time.Second))
	if utc.Equal(want) {
		d.breaks = 0
		return true
	}
	d.breaks++
	if d.breaks >= 3 {
		d.breaks = 0
		return true
	}
	return false
}

// sample runs one accepted offset through the servo, the bound estimator
// and the state machine.
func (d *Discipline) sample(p pps.Pulse, offset time.Duration) {
	localNs := p.Local.UnixNano() - d.stepNs
	out := d.servo.Sample(float64(offset), localNs)
	if out.State == servo.Jump {
		step := time.Duration(out.StepNs)
		if err := d.clk.Step(step); err != nil {
			d.log.Error("clock step failed", "step_ns", int64(step), "err", err)
			return
		}
		// The clock keeps the frequency it had: the step changes no
		// frequency, so that is the correction the estimator integrates.
		d.est.AddSample(localNs, float64(offset), d.cur.FrequencyPPB)
		d.est.Step(localNs, out.StepNs)
		d.stepNs += int64(step)
		d.cur.Steps++
		d.cur.Updated = p.Local.Add(step)
		if !d.lastEdge.IsZero() {
			d.lastEdge = d.lastEdge.Add(step)
		}
		for i := range d.awaiting {
			d.awaiting[i].edge = d.awaiting[i].edge.Add(step)
		}
		d.pulses = d.pulses[:0] // their timestamps predate the step
		d.offsets.reset()
		d.inLock, d.outOfLock = 0, 0
		d.log.Info("clock stepped", "step_ns", int64(step))
		d.transition(Acquiring, "stepped; converging")
		d.publish()
		return
	}
	// The edge is labelled only once its NMEA arrives, so the correction
	// takes effect now, not at the edge: the estimator is told the
	// frequency in force at the edge, then the change at its real time.
	prevFreq := d.cur.FrequencyPPB
	if err := d.clk.SetFrequency(out.FreqPPB); err != nil {
		d.log.Error("set frequency failed", "freq_ppb", out.FreqPPB, "err", err)
		return
	}
	appliedNs := d.clk.Now().UnixNano() - d.stepNs
	d.cur.FrequencyPPB = out.FreqPPB
	if out.Rejected {
		d.est.SetFrequency(appliedNs, out.FreqPPB)
		if out.Disagree {
			// The clock or the reference moved by more than the step
			// threshold: whichever it was, no bound can be claimed.
			d.reject(RejectDisagree, "offset_ns", int64(offset))
			d.inLock = 0
			if d.cur.State == Locked || d.cur.State == Holdover {
				d.transition(Acquiring, fmt.Sprintf("reference and clock disagree by %v", offset))
			}
		} else {
			d.reject(RejectSpike, "offset_ns", int64(offset))
		}
		d.publish()
		return
	}
	d.est.AddSample(localNs, float64(offset), prevFreq)
	d.est.SetFrequency(appliedNs, out.FreqPPB)
	d.offsets.add(float64(offset))
	d.cur.Samples++
	d.cur.Offset = offset
	d.cur.Jitter = time.Duration(d.offsets.rms())
	d.cur.PulseQuality = p.Quality
	d.cur.Updated = p.Local

	if abs(offset) <= d.cfg.LockThreshold {
		d.inLock++
	} else {
		d.inLock = 0
	}
	if abs(offset) > d.cfg.UnlockThreshold {
		d.outOfLock++
	} else {
		d.outOfLock = 0
	}
	switch {
	case d.cur.State == Locked && d.outOfLock >= max(d.cfg.UnlockSamples, 1):
		d.transition(Acquiring, "offset above unlock threshold")
	case d.cur.State != Locked && d.inLock >= d.cfg.LockSamples:
		d.everLock = true
		d.recovering = false
		d.transition(Locked, "")
	case d.cur.State == Holdover:
		// Keep serving through re-acquisition: the bound, fed by samples
		// again, still says how good the clock is and Servable still holds
		// it to the policy. ACQUIRING would take the node out of every
		// load balancer just as a site-wide outage ends.
		d.recovering = true
		d.transition(Holdover, "reference back; re-acquiring")
	case d.cur.State == Freerun || d.cur.State == Unsynchronized:
		d.transition(Acquiring, "converging")
	}
	d.publish()
}

// hold freezes the clock at the servo's estimate of the oscillator's own
// frequency, without the short-term phase correction of the last sample.
func (d *Discipline) hold(now time.Time) {
	f := d.servo.HoldoverFrequency()
	if err := d.clk.SetFrequency(f); err != nil {
		d.log.Error("set holdover frequency failed", "freq_ppb", f, "err", err)
		return
	}
	d.est.SetFrequency(now.UnixNano()-d.stepNs, f)
	d.cur.FrequencyPPB = f
}

// Tick re-evaluates holdover and the holdover bound at the clock's now.
func (d *Discipline) Tick() {
	now := d.clk.Now()
	switch d.cur.State {
	case Locked, Acquiring:
		if !d.cur.Updated.IsZero() && now.Sub(d.cur.Updated) > d.cfg.HoldoverAfter {
			if d.cur.State == Locked {
				d.transition(Holdover, "reference lost; holding frequency")
			} else {
				d.transition(Unsynchronized, "reference lost before lock")
			}
			d.hold(now)
			d.inLock = 0
		}
	case Holdover:
		if d.recovering && now.Sub(d.cur.Updated) > d.cfg.HoldoverAfter {
			// Lost again while re-acquiring: drop the last sample's
			// phase correction and hold the frequency once more.
			d.recovering = false
			d.hold(now)
			d.inLock = 0
			d.transition(Holdover, "reference lost again; holding frequency")
		}
		b := d.est.Bound(now.UnixNano() - d.stepNs)
		if d.cfg.MaxHoldoverBound > 0 && b > d.cfg.MaxHoldoverBound && !d.nmeaActive(now) {
			d.transition(Unsynchronized, "holdover error bound exceeded")
		}
	}
	d.publish()
	d.syncKernel(now)
}

func (d *Discipline) transition(to State, reason string) {
	if d.cur.State == to {
		d.cur.Reason = reason
		return
	}
	d.log.Info("clock state", "from", d.cur.State.String(), "to", to.String(), "reason", reason,
		"offset_ns", int64(d.cur.Offset), "freq_ppb", d.cur.FrequencyPPB)
	d.cur.State = to
	d.cur.Reason = reason
}

func (d *Discipline) setReason(r string) {
	if d.cur.State != Locked && d.cur.Reason != r {
		d.cur.Reason = r
		d.publish()
	}
}

// publish freezes a copy of the current status for readers.
func (d *Discipline) publish() {
	now := d.clk.Now()
	if !d.cur.Updated.IsZero() {
		// The bound now, and how fast it grows over the next seconds (an
		// upper slope: holdover error grows faster than linearly).
		at := now.UnixNano() - d.stepNs
		b0, b2 := d.est.Bound(at), d.est.Bound(at+2e9)
		d.cur.ErrorBound, d.cur.BoundAsOf = b0, now
		d.cur.BoundGrowthPPB = math.Max(0, float64(b2-b0)/2)
		if b2 == math.MaxInt64 {
			// No bound in two seconds: BoundAt saturates at once rather
			// than extrapolating half the sentinel per second (a bound of
			// 1e6 s a quarter of a millisecond later).
			d.cur.BoundGrowthPPB = math.MaxFloat64
		}
	}
	if d.cfg.Leap != nil {
		ls := d.cfg.Leap.Status(now)
		d.cur.Leap, d.cur.TAIOffset, d.cur.LeapListExpired = ls.Leap, ls.TAIOffset, ls.Expired
	}
	d.cur.NMEADelay, d.cur.NMEADelaySigma = time.Duration(d.delay.mean), d.delay.sigma()
	s := d.cur
	s.Source = "gnss+pps"
	if d.nmeaActive(now) {
		// PPS lost, NMEA still valid: while the holdover bound is within
		// policy it stands; past it, the measured NMEA-only bound
		// (milliseconds) takes over at the NMEA-only stratum.
		if hb := s.BoundAt(now); d.cfg.MaxHoldoverBound > 0 && hb > d.cfg.MaxHoldoverBound {
			s.Source = "gnss-nmea-only"
			s.ErrorBound, s.BoundAsOf, s.Offset = d.nmea.bound, d.nmea.at, d.nmea.offset
			s.MaxBound = d.cfg.NMEAOnlyMaxBound
			s.Reason = "PPS lost; serving NMEA-only time"
		}
	}
	s.Stratum = 16
	if s.Servable(now) {
		s.Stratum = d.cfg.Stratum
		if s.Source == "gnss-nmea-only" {
			s.Stratum = d.cfg.NMEAOnlyStratum
		}
	}
	d.status.Store(&s)
}

// syncKernel tells the clock what the discipline believes of it.
func (d *Discipline) syncKernel(now time.Time) {
	s := d.status.Load()
	_ = d.clk.SetSync(clock.SyncStatus{
		Synchronized: s.Servable(now),
		MaxError:     s.BoundAt(now),
		EstError:     s.Jitter,
		Leap:         s.Leap,
		TAIOffset:    s.TAIOffset,
	})
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
