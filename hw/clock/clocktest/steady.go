package clocktest

import "time"

// Steady is "true time" for the simulation mode: the host clock as read
// once, at NewSteady, and from then on advanced by the monotonic clock.
//
// The host's wall clock can be stepped under a running simulation (an NTP
// daemon on a CI host, a virtual machine resumed after a pause) while its
// timers and the readings' monotonic parts are not. A simulated world read
// from time.Now would see that step as a phase step of its GNSS reference:
// in CI, every simulated node running at that moment rejected its pulses
// as spikes, slewed at 500 ppm or raised a phase-step integrity alarm.
// Steady's readings move only with the monotonic clock, so wall and
// monotonic time agree and the simulated world is the same whichever it
// is measured by.
type Steady struct{ base time.Time }

// NewSteady starts a Steady clock at the host's time now.
func NewSteady() Steady { return Steady{base: time.Now()} }

// Now returns the start time plus the monotonic time elapsed since.
func (s Steady) Now() time.Time { return s.base.Add(time.Since(s.base)) }
