// Package clocktest provides clocks for tests and for the simulation mode:
// Oscillator, a simulated free-running oscillator with frequency error and
// wander that a servo can steer, and whose error against "true time" (any
// reference clock, usually the host clock) is known exactly.
package clocktest
