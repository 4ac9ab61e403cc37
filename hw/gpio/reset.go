package gpio

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// DefaultResetWidth is how long the reset line is held asserted when
// ResetOptions.Width is zero.
const DefaultResetWidth = 100 * time.Millisecond

// ResetOptions configure a receiver reset line.
type ResetOptions struct {
	// Width is how long reset is held asserted; zero means
	// DefaultResetWidth.
	Width time.Duration
	// ActiveHigh asserts reset by driving the pin high. The zero value is
	// the common active-low reset (nRESET).
	ActiveHigh bool
}

// ResetLine drives the GNSS receiver's reset input.
type ResetLine struct {
	pin              gpio.PinOut
	active, inactive gpio.Level
	width            time.Duration

	mu     sync.Mutex // one pulse at a time
	pulses atomic.Uint64
}

// NewResetLine releases reset (drives the inactive level) and returns the
// line.
func NewResetLine(pin gpio.PinOut, opts ResetOptions) (*ResetLine, error) {
	r := &ResetLine{pin: pin, active: gpio.Low, inactive: gpio.High, width: opts.Width}
	if opts.ActiveHigh {
		r.active, r.inactive = gpio.High, gpio.Low
	}
	if r.width <= 0 {
		r.width = DefaultResetWidth
	}
	if err := r.drive(r.inactive, "release"); err != nil {
		return nil, err
	}
	return r, nil
}

// Pulse asserts reset for the configured width and releases it. If ctx ends
// first, reset is released at once and ctx's error returned, so the receiver
// is never left held in reset.
func (r *ResetLine) Pulse(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.drive(r.active, "assert"); err != nil {
		// The write may have half happened; try to release.
		_ = r.drive(r.inactive, "release")
		return err
	}
	r.pulses.Add(1)
	timer := time.NewTimer(r.width)
	defer timer.Stop()
	var waitErr error
	select {
	case <-timer.C:
	case <-ctx.Done():
		waitErr = ctx.Err()
	}
	if err := r.drive(r.inactive, "release"); err != nil {
		return err
	}
	return waitErr
}

// Pulses is the number of reset pulses issued.
func (r *ResetLine) Pulses() uint64 { return r.pulses.Load() }

func (r *ResetLine) drive(level gpio.Level, op string) error {
	if err := r.pin.Out(level); err != nil {
		return fmt.Errorf("gpio: reset %s: %s (%s): %w", r.pin, op, level, err)
	}
	return nil
}
