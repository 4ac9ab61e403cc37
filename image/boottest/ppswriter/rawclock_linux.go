package main

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// rawClock is CLOCK_MONOTONIC_RAW: the hardware counter scaled at its
// boot-time calibration, never slewed or stepped, so the daemon under
// test cannot move it.
type rawClock struct{}

// Now reads CLOCK_MONOTONIC_RAW.
func (rawClock) Now() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_RAW, &ts); err != nil {
		// Linux has had this clock since 2.6.28; nothing to fall back to.
		panic("ppswriter: clock_gettime(CLOCK_MONOTONIC_RAW): " + err.Error())
	}
	return time.Duration(ts.Nano())
}

// Sleep waits on the Go runtime's timers (CLOCK_MONOTONIC, which the
// daemon may slew by a few hundred ppm: sleepUntil spins the rest).
func (rawClock) Sleep(ctx context.Context, d time.Duration) error { return timerSleep(ctx, d) }

// rawClockSupported tells whether rawClock works here.
const rawClockSupported = true
