package main

import (
	"context"
	"time"
)

// Clock is the clock the writer times pulses from: CLOCK_MONOTONIC_RAW in
// the guest, which nothing steers, so the daemon under test cannot move
// the pulses it is measuring.
type Clock interface {
	// Now reads the clock.
	Now() time.Duration
	// Sleep waits about d (it may overshoot), or until ctx is done, when
	// it returns ctx's error.
	Sleep(ctx context.Context, d time.Duration) error
}

// timerSleep is Clock.Sleep on the Go runtime's timers.
func timerSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// nextSecond returns the label k of the next pulse: the first second whose
// pulse time k s + offset (host UTC) is not before host. When a pulse was
// already emitted or skipped for second last (haveLast), k is after it,
// so a resynchronisation that moves the anchor back never repeats a
// second.
func nextSecond(host time.Time, offset time.Duration, last int64, haveLast bool) int64 {
	ns := host.UnixNano() - int64(offset)
	k := ns / int64(time.Second)
	if ns%int64(time.Second) > 0 {
		k++ // ceiling; Go's division truncates toward zero
	}
	if haveLast && k <= last {
		k = last + 1
	}
	return k
}

// pulseTime is host UTC of the pulse for second k.
func pulseTime(k int64, offset time.Duration) time.Time {
	return time.Unix(k, 0).Add(offset).UTC()
}

// sleepUntil waits until c reads deadline or later: coarse sleeps while
// more than spin is left, then reading c in a loop, so that the wake-up
// does not depend on the timer's slack. It returns early only with ctx's
// error.
func sleepUntil(ctx context.Context, c Clock, deadline, spin time.Duration) error {
	for {
		left := deadline - c.Now()
		if left <= 0 {
			return nil
		}
		if left > spin {
			if err := c.Sleep(ctx, left-spin); err != nil {
				return err
			}
			continue
		}
		for c.Now() < deadline {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return nil
	}
}
