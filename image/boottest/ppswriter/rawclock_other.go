//go:build !linux

package main

import (
	"context"
	"time"
)

// rawClock stands in for CLOCK_MONOTONIC_RAW, which only Linux has; run
// refuses to start without it (rawClockSupported).
type rawClock struct{}

// Now panics: there is no raw clock here.
func (rawClock) Now() time.Duration { panic("ppswriter: CLOCK_MONOTONIC_RAW needs Linux") }

// Sleep waits on the Go runtime's timers.
func (rawClock) Sleep(ctx context.Context, d time.Duration) error { return timerSleep(ctx, d) }

// rawClockSupported tells whether rawClock works here.
const rawClockSupported = false
