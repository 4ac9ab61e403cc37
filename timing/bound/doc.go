// Package bound estimates how far the disciplined clock may be from the
// reference, honestly: an upper bound on |local − reference| that holds for
// at least 99.9 % of the time, both while samples arrive and in holdover.
//
// It is pure: the caller passes every sample, frequency change and step with
// the local time it happened at, and asks for the bound at a local time. It
// reads no clock and logs nothing.
//
// Three parts:
//
//   - Allan: an online overlapping Allan deviation over octave averaging
//     times, computed from the clock's free-running phase (the measured
//     offsets with the applied corrections taken out), and a fit of the
//     classic power-law noise model to it.
//   - PhaseFilter: a two-state (phase, frequency) Kalman filter. (The servo
//     package uses Noise, the model type, for its oracle configuration.)
//   - Estimator: runs its own PhaseFilter, tuned from the Allan fit, and
//     publishes Bound(t) = |predicted offset| + k·σ(t), where σ(t) grows in
//     holdover from the filter's uncertainty and from τ·ADEV(τ) at τ = time
//     since the last sample.
//
// TempComp is an optional temperature-compensation hook for holdover.
package bound
