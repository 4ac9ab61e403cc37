// Package simbench is the clock-discipline simulation bench: a discrete-time
// model of a local oscillator (initial frequency error, white and
// random-walk frequency noise, a temperature term), a PPS timestamp model
// (white noise and rare one-sided latency spikes) and GNSS outages, driven
// one simulated second per step with no wall clock, so hours run in
// milliseconds and every run is reproducible from its seed.
//
// Each run drives the shipped timing.Discipline (labelling, policy, state
// machine, holdover, published bound) over a simulated clock: pulses
// timestamped on it, NMEA naming each second, and the daemon's ticks.
// Each scenario runs it with three control laws on the same realisation of
// the noise: the adaptive Kalman servo we ship, the linuxptp-style PI
// baseline, and an oracle Kalman filter that is told the true noise
// parameters. Every run checks the error bound the discipline publishes
// against the true offset each second.
package simbench
