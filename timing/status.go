package timing

import (
	"math"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/timing/bound"
	"github.com/aunsorm/timenode/timing/servo"
)

// State is the discipline's state.
type State int

// Discipline states. The zero value is Freerun.
const (
	Freerun        State = iota // no usable reference yet; clock free-running
	Acquiring                   // samples arriving, servo converging
	Locked                      // tracking the reference within the lock threshold
	Holdover                    // reference lost; frequency held, bound growing
	Unsynchronized              // holdover bound exceeded, or reference unusable
)

var stateNames = [...]string{"FREERUN", "ACQUIRING", "LOCKED", "HOLDOVER", "UNSYNCHRONIZED"}

// String returns the state's upper-case name as used in attestations,
// /health and metric labels.
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "UNKNOWN"
	}
	return stateNames[s]
}

// States lists every state, for metrics that export one gauge per state.
func States() []State { return []State{Freerun, Acquiring, Locked, Holdover, Unsynchronized} }

// Status is an immutable snapshot of the discipline. Readers get a pointer
// that is never modified after publication.
type Status struct {
	State        State
	Stratum      uint8         // NTP stratum to claim: configured value when servable, 16 otherwise
	Offset       time.Duration // last measured offset, local minus UTC
	FrequencyPPB float64       // frequency correction applied to the clock
	Jitter       time.Duration // RMS of recent offsets
	// ErrorBound is the bound on |local - UTC| at BoundAsOf; it widens at
	// BoundGrowthPPB (ns per second) after that. The discipline republishes
	// every tick, so the linear extrapolation spans a fraction of a second.
	ErrorBound     time.Duration
	BoundGrowthPPB float64
	BoundAsOf      time.Time
	Updated        time.Time  // local clock time of the last accepted sample; zero if none
	Leap           clock.Leap // leap second at the end of the current UTC day
	TAIOffset      int        // TAI-UTC in seconds, 0 if unknown
	// LeapListExpired: the leap second list is past its expiry, so a leap
	// announced since may be missing (a warning, not a failure).
	LeapListExpired bool
	PulseQuality    pps.Quality
	Samples         uint64 // accepted PPS/NMEA pairs
	Steps           uint64 // clock steps applied
	Reason          string // why the state is not LOCKED, for /health
	// MaxBound is the configured limit on the error bound while serving.
	MaxBound time.Duration
	// Source is what the time comes from: "gnss+pps", or "gnss-nmea-only"
	// when the PPS is lost and NMEA alone dates the seconds.
	Source string
	// NMEADelay and NMEADelaySigma are the receiver's learned delay of
	// its NMEA after the edge, and its spread.
	NMEADelay, NMEADelaySigma time.Duration
	// StateSince is the local clock time State was entered; zero for
	// the FREERUN the discipline starts in.
	StateSince time.Time
	// LastPulse is the local time of the last PPS edge seen (accepted or
	// not), LastFix the arrival of the last valid fix; zero if none yet.
	LastPulse, LastFix time.Time
	// Stability is the bound estimator's fit of the oscillator and
	// timestamp noise against GNSS (its Allan model); StabilityFitted is
	// false until there is one. The integrity guard calibrates its PPS
	// check with it.
	Stability       bound.Noise
	StabilityFitted bool
	// Allan is the measurement behind Stability, which the daemon keeps
	// across restarts (Config.Stability).
	Allan bound.Stability
	// FrequencyHistory is the oscillator's free-running frequency over
	// the last hours, whose range limits the holdover bound's wander;
	// the daemon keeps it with Allan (Config.FrequencyHistory).
	FrequencyHistory bound.FrequencyHistory
	// ServoMemory is what the servo learnt that outlives a restart, as of
	// the last accepted sample (nil until it has learnt it); the daemon
	// keeps it with Allan (Config.ServoMemory). Never modified after
	// publication.
	ServoMemory *servo.Memory
	// ClockID names the steered clock for as long as its oscillator's
	// free-running frequency holds (clock.Identified; "" if it cannot
	// say): the daemon keeps it with ServoMemory, so that only a restart
	// on the same clock starts from the frequency (Config.KeptFrequency).
	ClockID string
}

// HoldoverSince returns when the node entered HOLDOVER, and false when it
// is not in HOLDOVER. Re-acquiring within holdover does not restart it.
func (s *Status) HoldoverSince() (time.Time, bool) {
	if s.State != Holdover || s.StateSince.IsZero() {
		return time.Time{}, false
	}
	return s.StateSince, true
}

// PulseAge returns how long before now the last PPS edge came, and false
// if none came yet. A step of the clock just after an edge can make the
// age read short by the step for a second; it never reads negative.
func (s *Status) PulseAge(now time.Time) (time.Duration, bool) { return age(s.LastPulse, now) }

// FixAge is PulseAge for the last valid fix.
func (s *Status) FixAge(now time.Time) (time.Duration, bool) { return age(s.LastFix, now) }

func age(t, now time.Time) (time.Duration, bool) {
	if t.IsZero() {
		return 0, false
	}
	return max(now.Sub(t), 0), true
}

// Why says why the state is not LOCKED: the discipline's reason, or what
// the state itself means when no reason was given, so /health and the
// CLI never show HOLDOVER without one. Empty while LOCKED.
func (s *Status) Why() string {
	switch {
	case s.State == Locked:
		return ""
	case s.Reason != "":
		return s.Reason
	}
	switch s.State {
	case Freerun:
		return "no reference yet"
	case Acquiring:
		return "converging on the reference"
	case Holdover:
		return "reference lost; holding frequency"
	}
	return "not synchronized"
}

// BoundAt returns the error bound at local time now: the bound at the last
// update widened by the growth rate over the time since.
func (s *Status) BoundAt(now time.Time) time.Duration {
	if s.BoundAsOf.IsZero() {
		return 0
	}
	age := now.Sub(s.BoundAsOf)
	if age <= 0 || s.BoundGrowthPPB <= 0 {
		return s.ErrorBound
	}
	// Round the growth up: a published bound is never below the computed
	// one; and saturate, never wrap, at the largest Duration.
	g := math.Ceil(s.BoundGrowthPPB * age.Seconds())
	if math.IsNaN(g) || g >= float64(math.MaxInt64-s.ErrorBound) {
		return time.Duration(math.MaxInt64)
	}
	return s.ErrorBound + time.Duration(g)
}

// Servable reports whether the node may serve time at local time now:
// locked, or in holdover with the bound still within policy.
func (s *Status) Servable(now time.Time) bool {
	switch s.State {
	case Locked:
		return true
	case Holdover:
		return s.MaxBound <= 0 || s.BoundAt(now) <= s.MaxBound
	}
	return false
}

// ServableWith is Servable with the bound the node publishes, publish(b)
// of the discipline's b (an integrity policy widens it while the GNSS is
// suspect): that bound must be within policy too (PastPolicy). A node
// locked to a suspect GNSS whose widening passes the policy stops serving
// rather than sign time it promised to keep within it.
func (s *Status) ServableWith(now time.Time, publish func(time.Duration) time.Duration) bool {
	return s.Servable(now) && !s.pastPolicy(now, publish)
}

// PastPolicy reports whether the published bound, publish(b) of the
// discipline's b, keeps a node that Servable lets serve out of service:
// past the policy's MaxBound at now (never without one), in HOLDOVER
// always, LOCKED only when publish widened b, since a locked
// discipline's own bound is judged by its lock thresholds, not by the
// policy, as it always was.
func (s *Status) PastPolicy(now time.Time, publish func(time.Duration) time.Duration) bool {
	return s.Servable(now) && s.pastPolicy(now, publish)
}

// pastPolicy is PastPolicy for a state the caller knows Servable lets
// serve, so that ServableWith, which every request asks, judges it once.
func (s *Status) pastPolicy(now time.Time, publish func(time.Duration) time.Duration) bool {
	if s.MaxBound <= 0 {
		return false
	}
	b := s.BoundAt(now)
	p := publish(b)
	return p > s.MaxBound && (s.State != Locked || p > b)
}

// FreeRunning reports whether the clock runs on its oscillator without a
// reference, at the frequency the discipline holds, with a bound: in
// HOLDOVER, or UNSYNCHRONIZED once that bound passed policy (the clock
// runs on as before, and its bound goes on growing from the measured
// stability). An integrity check that compares GNSS with the node's own
// clock can go on doing so; in FREERUN there is no bound to compare with.
func (s *Status) FreeRunning() bool {
	return (s.State == Holdover || s.State == Unsynchronized) && !s.BoundAsOf.IsZero() && s.ErrorBound < math.MaxInt64
}
