package timing

import (
	"math"
	"time"

	"github.com/aunsorm/timenode/hw/gnss"
)

// labelled is an edge labelled ahead of its NMEA.
type labelled struct {
	label, edge time.Time
}

// delayStats learns when a receiver's NMEA for second N starts after edge
// N: receivers differ (50-950 ms) but each is steady, so the mean and
// spread narrow the pairing window and date NMEA when the PPS is lost.
type delayStats struct {
	n        int
	mean, m2 float64 // ns; m2 is the variance
}

// minDelaySamples are needed before the learned delay is trusted.
const minDelaySamples = 16

func (s *delayStats) add(d time.Duration) {
	x := float64(d)
	s.n++
	if s.n <= minDelaySamples {
		// Welford's running mean and variance to start...
		delta := x - s.mean
		s.mean += delta / float64(s.n)
		s.m2 += (delta*(x-s.mean) - s.m2) / float64(s.n)
		return
	}
	// ...then an exponential window, so a receiver that changes its
	// output schedule (a firmware setting) is followed.
	const alpha = 1.0 / 64
	delta := x - s.mean
	s.mean += alpha * delta
	s.m2 = (1 - alpha) * (s.m2 + alpha*delta*delta)
}

func (s *delayStats) learned() bool { return s.n >= minDelaySamples }

func (s *delayStats) sigma() time.Duration { return time.Duration(math.Sqrt(math.Max(s.m2, 0))) }

// delayWindow is when the NMEA for an edge may begin: the configured
// limits, narrowed around this receiver's learned delay (±max(4σ, 30 ms)).
func (d *Discipline) delayWindow() (lo, hi time.Duration) {
	lo, hi = d.cfg.MinNMEADelay, d.cfg.MaxNMEADelay
	if !d.delay.learned() {
		return lo, hi
	}
	w := max(4*d.delay.sigma(), 30*time.Millisecond)
	m := time.Duration(d.delay.mean)
	return max(lo, m-w), min(hi, m+w)
}

// nmeaOnly is the fallback when the PPS is lost but the receiver keeps a
// valid fix: each epoch's arrival, less the learned delay, dates the
// second. That is milliseconds coarse, so the bound is the measured offset
// plus four times the delay spread, and the stratum is the configured
// NMEA-only stratum. The clock is not steered from it (frequency stays
// held); it only keeps the node honestly servable at the coarser grade.
type nmeaOnly struct {
	at     time.Time     // local time of the last NMEA-only sample
	offset time.Duration // its offset, local minus UTC
	bound  time.Duration // its error bound
}

// nmeaSample takes a fix with no edge to label as an NMEA-only sample.
func (d *Discipline) nmeaSample(f gnss.Fix) {
	if d.cfg.NMEAOnlyStratum == 0 || !d.delay.learned() || !f.Valid {
		return
	}
	if !d.everLock || (d.cur.State != Holdover && d.cur.State != Unsynchronized) {
		return
	}
	off := f.Received.Add(-time.Duration(d.delay.mean)).Sub(f.UTC)
	d.nmea = nmeaOnly{at: f.Received, offset: off, bound: abs(off) + 4*d.delay.sigma() + time.Millisecond}
	if d.cur.State == Unsynchronized && d.nmea.bound <= d.cfg.NMEAOnlyMaxBound {
		d.transition(Holdover, "PPS lost; serving NMEA-only time")
	}
	d.publish()
}

// nmeaActive reports whether a recent NMEA-only sample keeps the node
// servable at the NMEA-only grade at now.
func (d *Discipline) nmeaActive(now time.Time) bool {
	return !d.nmea.at.IsZero() && now.Sub(d.nmea.at) < d.cfg.HoldoverAfter &&
		(d.cur.State == Holdover || d.cur.State == Unsynchronized) &&
		d.nmea.bound <= d.cfg.NMEAOnlyMaxBound
}
