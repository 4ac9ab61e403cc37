// Package simclock is the simulated local clock that the timing benches
// (timing/simbench, timing/integrity/attacksim) let the shipped
// discipline steer. The bench moves true time forward; the clock's
// reading is true time plus the true offset, which grows at the
// oscillator's own frequency error plus the correction in force. It reads
// no wall clock, so hours of simulated time run in a fraction of a second.
package simclock

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

// Event times within a simulated second, after its edge: the NMEA naming
// the second arrives, and the daemon's 250 ms ticker fires (at an
// arbitrary phase, not with the edge).
const (
	NMEADelay = 150 * time.Millisecond
	TickPhase = 50 * time.Millisecond
	TickEvery = 250 * time.Millisecond
)

// Clock is a simulated steerable clock. Its zero value is not usable:
// make one with New.
type Clock struct {
	epoch time.Time // true time zero
	atNs  int64     // true time since epoch (ns)
	// X is the true offset, local − true (ns): the error a bench scores.
	X float64
	// Osc is the oscillator's own frequency error now (ppb); the bench
	// sets it each simulated second.
	Osc  float64
	corr float64 // frequency correction in force (ppb)
	id   uint64  // ClockID: one oscillator for the clock's life
}

var (
	_ clock.Steerable  = (*Clock)(nil)
	_ clock.Identified = (*Clock)(nil)
)

// clocks numbers the clocks New makes, so that no two share an ID.
var clocks atomic.Uint64

// New returns a clock at true time epoch whose reading is off by x0 ns.
func New(epoch time.Time, x0 float64) *Clock {
	return &Clock{epoch: epoch, X: x0, id: clocks.Add(1)}
}

// ClockID implements clock.Identified: a discipline restarted on the same
// Clock runs on the same oscillator, as a daemon restarted within one
// boot does.
func (c *Clock) ClockID() (string, error) { return fmt.Sprintf("sim:%d", c.id), nil }

// Advance moves true time to ns after the epoch; the offset integrates
// the frequency error over the interval.
func (c *Clock) Advance(ns int64) {
	c.X += (c.Osc + c.corr) * float64(ns-c.atNs) / 1e9
	c.atNs = ns
}

// Now implements clock.Clock: the local reading at the current true time.
func (c *Clock) Now() time.Time {
	return c.epoch.Add(time.Duration(c.atNs + int64(math.Round(c.X))))
}

// SetFrequency implements clock.Steerable.
func (c *Clock) SetFrequency(ppb float64) error { c.corr = ppb; return nil }

// Frequency implements clock.Steerable.
func (c *Clock) Frequency() (float64, error) { return c.corr, nil }

// Step implements clock.Steerable.
func (c *Clock) Step(d time.Duration) error { c.X += float64(d); return nil }

// SetSync implements clock.Steerable; no bench reads the kernel's
// synchronisation status, so it is not kept.
func (c *Clock) SetSync(clock.SyncStatus) error { return nil }

// Ticks moves true time through the daemon's ticks of the second that
// starts edge ns after the epoch, calling tick at each.
func (c *Clock) Ticks(edge int64, tick func()) {
	for t := TickPhase; t < time.Second; t += TickEvery {
		c.Advance(edge + int64(t))
		tick()
	}
}
