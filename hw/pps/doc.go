// Package pps reads pulse-per-second edges. The kernel source uses the Linux
// PPS API on /dev/ppsN; a GPIO source timestamps edges in user space where no
// kernel driver exists; the simulator (package hw/sim) produces pulses from a
// simulated oscillator. All of them implement Source, so the timing code
// cannot tell them apart except by the Quality each pulse declares.
//
// Kernel (OpenKernel, Linux only; elsewhere it returns an error wrapping
// errors.ErrUnsupported) speaks the PPS ioctls directly through
// golang.org/x/sys/unix: it checks the device can capture assert edges with
// timespec timestamps, selects assert capture, and blocks in PPS_FETCH with
// a timeout. Open errors wrap ErrNoDevice, ErrNotPPS, ErrNoAssertCapture or
// ErrUnsupportedMode and say how to get a working /dev/ppsN. GPIO (NewGPIO,
// OpenGPIO) waits for an edge through periph.io and timestamps it with an
// injected clock.
//
// Both number pulses so that a gap in Pulse.Seq means missed pulses, and
// both expose Stats (pulses, missed, timeouts) for a metrics collector; the
// package itself never logs. The ABI the kernel source relies on is checked
// against <linux/pps.h> by the tests of internal/ppsabi/cabi.
package pps
