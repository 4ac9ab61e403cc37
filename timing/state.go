package timing

import (
	"math"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/timing/leap"
)

// Tick re-evaluates holdover and the holdover bound at the clock's now.
func (d *Discipline) Tick() {
	now := d.clk.Now()
	switch {
	case !d.holding && !d.appliedAt.IsZero() && now.Sub(d.appliedAt) > servoHoldAfter:
		d.hold(now) // a missed pulse: the last output's phase term has run
	case d.holding && d.tempInput:
		d.hold(now) // the held frequency follows the temperature
	}
	withheld := d.withheld.Load()
	entered := false
	if withheld && (d.cur.State == Locked ||
		d.cur.State == Acquiring && d.everLock && now.Sub(d.unlockedAt) <= withheldUnlockedWithin) {
		d.transition(Holdover, "GNSS withheld by the integrity check; holding frequency")
		d.inLock, entered = 0, true
	}
	// Roll back on entering, or when already holding over as the guard
	// names the suspect time: a fast drag makes the servo reject the
	// edges before the check catches it, and the frequency held since
	// then is the dragged one.
	if withheld && d.cur.State == Holdover && (entered || d.suspectSince.Load() != 0) {
		d.rollBack(now)
		d.hold(now)
		d.recovering = false
	}
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

// assess counts an accepted offset against the lock and unlock thresholds
// and moves the state machine on.
func (d *Discipline) assess(offset time.Duration) {
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
}

// withheldUnlockedWithin is how recently a clock in ACQUIRING must have
// been LOCKED for a withheld GNSS to make it hold over rather than go
// unsynchronized: a spoofer's push of more than the unlock threshold
// takes the clock out of LOCKED seconds before the integrity check
// catches it, and the clock the push found is the one to hold. The bound
// still decides whether it serves.
const withheldUnlockedWithin = 5 * time.Minute

// SetWithheld tells the discipline whether the integrity guard is keeping
// GNSS from it (it may be called from any goroutine). While withheld, the
// next tick takes a LOCKED clock, or one that left LOCKED within
// withheldUnlockedWithin, into HOLDOVER at once instead of waiting for
// the reference to time out, and from ACQUIRING instead of to
// UNSYNCHRONIZED; it holds from the state before SetSuspectSince's time.
func (d *Discipline) SetWithheld(w bool) { d.withheld.Store(w) }

func (d *Discipline) transition(to State, reason string) {
	if d.cur.State == to {
		d.cur.Reason = reason
		return
	}
	if d.cur.State == Locked && to == Acquiring {
		d.unlockedAt = d.clk.Now()
	}
	d.log.Info("clock state", "from", d.cur.State.String(), "to", to.String(), "reason", reason,
		"offset_ns", int64(d.cur.Offset), "freq_ppb", d.cur.FrequencyPPB)
	d.cur.State = to
	d.cur.Reason = reason
	d.cur.StateSince = d.clk.Now() // for /health's holdover_since
}

func (d *Discipline) setReason(r string) {
	if d.cur.State != Locked && d.cur.Reason != r {
		d.cur.Reason = r
		d.publish()
	}
}

// SetLeap replaces the leap second schedule (a reload with a fresh
// leap-seconds.list); nil means none. Safe for concurrent use: the next
// published status (at the latest the next Tick) reflects it.
func (d *Discipline) SetLeap(s *leap.Schedule) { d.leap.Store(s) }

// Leap returns the leap second schedule in use, nil if none.
func (d *Discipline) Leap() *leap.Schedule { return d.leap.Load() }

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
	if sched := d.leap.Load(); sched != nil {
		ls := sched.Status(now)
		d.cur.Leap, d.cur.TAIOffset, d.cur.LeapListExpired = ls.Leap, ls.TAIOffset, ls.Expired
	} else {
		d.cur.Leap, d.cur.TAIOffset, d.cur.LeapListExpired = clock.LeapNone, 0, false
	}
	d.cur.NMEADelay, d.cur.NMEADelaySigma = time.Duration(d.delay.mean), d.delay.sigma()
	d.cur.Stability, d.cur.StabilityFitted = d.est.Noise()
	d.cur.Allan, d.cur.FrequencyHistory = d.est.Stability(), d.est.FrequencyHistory()
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
