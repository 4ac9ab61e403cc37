package ntp

import (
	"sync/atomic"
	"time"
)

// offsetClock is a disciplined clock that reads the host clock plus a known
// error, like the simulated oscillator in simulation mode.
type offsetClock struct{ off time.Duration }

func (c offsetClock) Now() time.Time { return time.Now().Add(c.off) }

// tickClock advances by tick on every read; n must be set.
type tickClock struct {
	tick time.Duration
	n    *atomic.Int64
}

func (c tickClock) Now() time.Time {
	return time.Unix(1_800_000_000, 0).Add(time.Duration(c.n.Add(1)) * c.tick)
}

// frozenClock never moves.
type frozenClock struct{}

func (frozenClock) Now() time.Time { return time.Unix(1_800_000_000, 0) }
