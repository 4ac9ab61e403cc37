package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRawClock reads the real CLOCK_MONOTONIC_RAW: it only moves forward,
// and sleepUntil on it wakes at the deadline, not before. (Reading a clock
// is harmless; nothing here writes anywhere.)
func TestRawClock(t *testing.T) {
	var c rawClock
	prev := c.Now()
	for range 1000 {
		now := c.Now()
		if now < prev {
			t.Fatalf("raw clock went back from %v to %v", prev, now)
		}
		prev = now
	}
	deadline := c.Now() + 20*time.Millisecond
	if err := sleepUntil(context.Background(), c, deadline, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	woke := c.Now()
	if woke < deadline {
		t.Fatalf("woke %v before the deadline", deadline-woke)
	}
	// Generous: emulated machines (the future-date test's guest) are slow.
	if late := woke - deadline; late > 500*time.Millisecond {
		t.Errorf("woke %v late", late)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
}
