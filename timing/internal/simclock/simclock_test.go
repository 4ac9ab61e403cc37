package simclock

import (
	"testing"
	"time"
)

// TestClock: the offset integrates the oscillator's error plus the
// correction, steps add to it, and the reading is true time plus it.
func TestClock(t *testing.T) {
	epoch := time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)
	c := New(epoch, 500)
	c.Osc = 3000 // 3 ppm fast
	c.Advance(2e9)
	if c.X != 500+6000 {
		t.Fatalf("after 2 s at 3 ppm: X = %v, want 6500", c.X)
	}
	if err := c.SetFrequency(-3000); err != nil {
		t.Fatal(err)
	}
	c.Advance(5e9)
	if c.X != 6500 {
		t.Fatalf("corrected: X = %v, want 6500", c.X)
	}
	if f, _ := c.Frequency(); f != -3000 {
		t.Fatalf("Frequency = %v", f)
	}
	if err := c.Step(-6500 * time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Now(), epoch.Add(5*time.Second); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
	c.X = 1.6
	if got := c.Now().Sub(epoch.Add(5 * time.Second)); got != 2 {
		t.Fatalf("reading rounds the offset to the nanosecond: %v", got)
	}
}

// TestTicks: four ticks per second, at the ticker's phase, with the clock
// advanced to each.
func TestTicks(t *testing.T) {
	c := New(time.Unix(0, 0), 0)
	var at []int64
	c.Ticks(3e9, func() { at = append(at, c.Now().UnixNano()) })
	want := []int64{3.05e9, 3.3e9, 3.55e9, 3.8e9}
	if len(at) != len(want) {
		t.Fatalf("ticks at %v, want %v", at, want)
	}
	for i := range want {
		if at[i] != want[i] {
			t.Fatalf("ticks at %v, want %v", at, want)
		}
	}
}
