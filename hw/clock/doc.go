// Package clock defines the clock abstractions the rest of timenode is
// written against: Clock (something that tells time) and Steerable (a clock
// the servo may discipline). The kernel implementation drives CLOCK_REALTIME
// through clock_adjtime; package clocktest provides a simulated oscillator.
//
// Nothing outside cmd/ calls time.Now for the disciplined time: every figure
// the appliance publishes is read from one of these clocks, so tests and the
// simulation mode can run the whole product against a simulated clock.
package clock
