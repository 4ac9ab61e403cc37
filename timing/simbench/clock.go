package simbench

import (
	"math"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

// simEpoch is true time zero of every run: the UTC the first pulse names.
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// simClock is the simulated local clock the discipline steers. The bench
// moves true time forward (advance); the clock's reading is true time plus
// the true offset x, which grows at the oscillator's own frequency error
// plus the correction in force. It reads no wall clock, so hours of
// simulated time run in a fraction of a second.
type simClock struct {
	atNs int64   // true time since simEpoch (ns)
	x    float64 // true offset, local − true (ns)
	osc  float64 // the oscillator's own frequency error now (ppb)
	corr float64 // frequency correction in force (ppb)
	sync clock.SyncStatus
}

var _ clock.Steerable = (*simClock)(nil)

// advance moves true time to ns.
func (c *simClock) advance(ns int64) {
	c.x += (c.osc + c.corr) * float64(ns-c.atNs) / 1e9
	c.atNs = ns
}

// Now implements clock.Clock: the local reading at the current true time.
func (c *simClock) Now() time.Time {
	return simEpoch.Add(time.Duration(c.atNs + int64(math.Round(c.x))))
}

// SetFrequency implements clock.Steerable.
func (c *simClock) SetFrequency(ppb float64) error { c.corr = ppb; return nil }

// Frequency implements clock.Steerable.
func (c *simClock) Frequency() (float64, error) { return c.corr, nil }

// Step implements clock.Steerable.
func (c *simClock) Step(d time.Duration) error { c.x += float64(d); return nil }

// SetSync implements clock.Steerable.
func (c *simClock) SetSync(s clock.SyncStatus) error { c.sync = s; return nil }
