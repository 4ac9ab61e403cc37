// Package simbench is the clock-discipline simulation bench: a discrete-time
// model of a local oscillator (initial frequency error, white and
// random-walk frequency noise, a temperature term), a PPS timestamp model
// (white noise and rare one-sided latency spikes) and GNSS outages, driven
// one simulated second per step with no wall clock, so hours run in
// milliseconds and every run is reproducible from its seed.
//
// Each scenario runs three servos on the same realisation of the noise: the
// adaptive Kalman servo we ship, the linuxptp-style PI baseline, and an
// oracle Kalman filter that is told the true noise parameters. Every run
// also feeds a bound.Estimator and checks its published error bound against
// the true offset each second.
package simbench
