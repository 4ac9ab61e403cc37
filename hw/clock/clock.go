package clock

import (
	"errors"
	"time"
)

// Clock tells time. Implementations must be safe for concurrent use.
type Clock interface {
	// Now returns the clock's current reading.
	Now() time.Time
}

// Leap is the kernel's leap second indication for the end of the current UTC day.
type Leap int

// Leap second indications, matching the NTP leap indicator values.
const (
	LeapNone   Leap = 0 // no leap second scheduled
	LeapInsert Leap = 1 // 23:59:60 will be inserted (STA_INS)
	LeapDelete Leap = 2 // 23:59:59 will be skipped (STA_DEL)
)

// String names the leap indication as it appears in attestations and logs.
func (l Leap) String() string {
	switch l {
	case LeapInsert:
		return "insert"
	case LeapDelete:
		return "delete"
	default:
		return "none"
	}
}

// SyncStatus is what the servo tells the clock about its own quality; on the
// kernel clock it becomes maxerror, esterror, STA_UNSYNC, STA_INS/STA_DEL and
// the TAI offset, so that other consumers of the kernel clock see the truth.
type SyncStatus struct {
	Synchronized bool          // clears STA_UNSYNC; only true while locked
	MaxError     time.Duration // worst-case error bound
	EstError     time.Duration // estimated (1 sigma) error
	Leap         Leap          // pending leap second at the end of the UTC day
	TAIOffset    int           // TAI-UTC in seconds, 0 if unknown
}

// Identified is a clock that can say whether it is the one an earlier
// process steered: its free-running frequency, as the servo measures it,
// holds only as long as its ID does. The kernel's clock keeps its
// oscillator and its calibration for one boot; a simulated oscillator
// that is made anew at every start has no lasting identity and does not
// implement it.
type Identified interface {
	// ClockID names the clock for as long as its free-running frequency
	// is the same oscillator's; ErrNoIdentity if it has none after all
	// (a wrapper around a clock without one).
	ClockID() (string, error)
}

// ErrNoIdentity is ClockID's answer for a clock with no lasting identity.
var ErrNoIdentity = errors.New("clock: no identity that outlives the process")

// Steerable is a clock whose frequency and phase a servo may adjust.
type Steerable interface {
	Clock
	// SetFrequency sets the absolute frequency correction in parts per
	// billion; positive makes the clock run faster.
	SetFrequency(ppb float64) error
	// Frequency returns the frequency correction currently applied.
	Frequency() (ppb float64, err error)
	// Step jumps the clock by d (positive moves it forward).
	Step(d time.Duration) error
	// SetSync publishes the discipline's view of the clock's quality.
	SetSync(s SyncStatus) error
}
