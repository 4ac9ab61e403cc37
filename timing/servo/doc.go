// Package servo holds the clock discipline's control law. It is pure: numbers
// in (measured offsets and the local times they were taken at), a frequency
// correction and a state out. It reads no clock and logs nothing, so the same
// code runs on the appliance, in the simulator and in golden-sequence tests.
//
// Policy shared by every algorithm (first sample, step threshold, lock
// detection) lives in Servo; an Algorithm only does the maths.
package servo
