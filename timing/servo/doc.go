// Package servo holds the clock discipline's control law. It is pure: numbers
// in (measured offsets and the local times they were taken at), a frequency
// correction and a state out. It reads no clock and logs nothing, so the same
// code runs on the appliance, in the simulator and in golden-sequence tests.
//
// Policy shared by every algorithm (first samples, step threshold, spike
// rejection, lock detection) lives in Servo; an Algorithm only does the
// maths. Two algorithms:
//
//   - Kalman (NewKalman): Kalman filters on phase, frequency and
//     temperature coefficient with dead-beat control; in its default,
//     adaptive mode it measures the timestamp noise and picks its
//     bandwidth online from a bank of filters. This is the servo to use:
//     servo.New(servo.DefaultConfig(), servo.NewKalman(servo.DefaultKalmanConfig()), freq).
//   - PI (NewPI): linuxptp's proportional-integral law, the baseline.
//
// docs/TIMING.md describes the design and the simulation bench's results.
package servo
