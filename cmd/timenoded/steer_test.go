package main

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/clock/clocktest"
)

// TestSteerLogRecoversFreeRunningPhase steers a simulated oscillator as a
// discipline would and checks that the reading minus the recorded
// correction is the free-running oscillator's, to a few nanoseconds.
func TestSteerLogRecoversFreeRunningPhase(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		steer func(s *steerLog, i int)
	}{
		{"no steering", func(*steerLog, int) {}},
		{"frequency every second", func(s *steerLog, i int) { _ = s.SetFrequency(float64(1000 * (i%7 - 3))) }},
		{"a step and frequency", func(s *steerLog, i int) {
			if i == 5 {
				_ = s.Step(-300 * time.Millisecond)
			}
			_ = s.SetFrequency(-20000 + float64(i))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := clocktest.NewManual(t0)
			osc := clocktest.NewOscillator(ref, clocktest.OscillatorConfig{InitialOffset: 200 * time.Millisecond, FrequencyErrorPPB: 15000})
			free := clocktest.NewOscillator(clocktest.NewManual(t0), clocktest.OscillatorConfig{InitialOffset: 200 * time.Millisecond, FrequencyErrorPPB: 15000})
			s := newSteerLog(osc)
			start := osc.Now()
			for i := range 20 {
				ref.Advance(700 * time.Millisecond)
				tt.steer(s, i)
				ref.Advance(300 * time.Millisecond)
				// An edge read a moment ago, looked up after a further change.
				edge := osc.Now()
				_ = s.SetFrequency(123)
				corr, _ := s.Correction(edge)
				got := float64(edge.Sub(start)) - corr
				want := float64(free.LocalAt(t0.Add(time.Duration(i+1) * time.Second)).Sub(free.LocalAt(t0)))
				if math.Abs(got-want) > 5 { // the oscillator rounds each reading to a ns
					t.Fatalf("second %d: free-running phase %.1f ns, want %.1f", i+1, got, want)
				}
			}
		})
	}
}

// identifiedClock is a simulated oscillator that says which clock it is,
// as the kernel's does.
type identifiedClock struct {
	*clocktest.Oscillator
	id string
}

func (c identifiedClock) ClockID() (string, error) { return c.id, nil }

// TestSteerLogClockID: the steering record passes on the identity of the
// clock it wraps, so a kept frequency reaches the discipline in
// production, and says a simulated oscillator has none.
func TestSteerLogClockID(t *testing.T) {
	osc := clocktest.NewOscillator(clocktest.NewManual(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)), clocktest.OscillatorConfig{})
	if id, err := newSteerLog(identifiedClock{osc, "boot:6f1c"}).ClockID(); err != nil || id != "boot:6f1c" {
		t.Errorf("wrapping an identified clock: %q, %v; want its ID", id, err)
	}
	if id, err := newSteerLog(osc).ClockID(); !errors.Is(err, clock.ErrNoIdentity) {
		t.Errorf("wrapping the simulated oscillator: %q, %v; want clock.ErrNoIdentity", id, err)
	}
}

// TestSteerLogOverlaps: a step back doubles the readings between where it
// lands and where it left, and only for generations before it; a step
// forward doubles none.
func TestSteerLogOverlaps(t *testing.T) {
	ref := clocktest.NewManual(time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC))
	s := newSteerLog(clocktest.NewOscillator(ref, clocktest.OscillatorConfig{}))
	at := s.Now()
	_ = s.Step(time.Second) // generation 1
	ref.Advance(10 * time.Second)
	left := s.Now()
	_ = s.Step(-2 * time.Second) // generation 2
	for _, c := range []struct {
		name string
		t    time.Time
		gen  uint64
		want bool
	}{
		{"before the step forward", at.Add(-time.Millisecond), 0, false},
		{"across the step forward", at.Add(500 * time.Millisecond), 0, false},
		{"where the step back landed", left.Add(-2 * time.Second), 1, true},
		{"just before it left", left.Add(-time.Nanosecond), 1, true},
		{"where it left", left, 1, false},
		{"before where it landed", left.Add(-2*time.Second - time.Nanosecond), 1, false},
		{"as of the step back's own generation", left.Add(-time.Second), 2, false},
	} {
		if got := s.Overlaps(c.t, c.gen); got != c.want {
			t.Errorf("%s: Overlaps = %v, want %v", c.name, got, c.want)
		}
	}
}
