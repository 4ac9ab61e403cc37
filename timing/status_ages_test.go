package timing

import (
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
)

// TestStatusWhyAndAges: the reason is never empty outside LOCKED, and
// ages are absent before the first pulse or fix and never negative.
func TestStatusWhyAndAges(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		st       Status
		why      string
		since    bool
		pulseAge time.Duration
		hasPulse bool
		fixAge   time.Duration
		hasFix   bool
	}{
		{name: "locked has no reason", st: Status{State: Locked, Reason: "stale text", LastPulse: t0.Add(-time.Second), LastFix: t0.Add(-700 * time.Millisecond)},
			pulseAge: time.Second, hasPulse: true, fixAge: 700 * time.Millisecond, hasFix: true},
		{name: "holdover with reason", st: Status{State: Holdover, Reason: "reference lost; holding frequency", StateSince: t0.Add(-time.Hour), LastPulse: t0.Add(-time.Hour)},
			why: "reference lost; holding frequency", since: true, pulseAge: time.Hour, hasPulse: true},
		{name: "holdover without reason", st: Status{State: Holdover, StateSince: t0.Add(-time.Minute)},
			why: "reference lost; holding frequency", since: true},
		{name: "freerun", st: Status{State: Freerun}, why: "no reference yet"},
		{name: "acquiring", st: Status{State: Acquiring}, why: "converging on the reference"},
		{name: "unsynchronized", st: Status{State: Unsynchronized, StateSince: t0}, why: "not synchronized"},
		{name: "pulse after now (a step)", st: Status{State: Acquiring, Reason: "stepped; converging", LastPulse: t0.Add(time.Millisecond)},
			why: "stepped; converging", hasPulse: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.st.Why(); got != tc.why {
				t.Errorf("Why = %q, want %q", got, tc.why)
			}
			since, ok := tc.st.HoldoverSince()
			if ok != tc.since || (ok && !since.Equal(tc.st.StateSince)) {
				t.Errorf("HoldoverSince = %v, %v, want %v", since, ok, tc.since)
			}
			if a, ok := tc.st.PulseAge(t0); a != tc.pulseAge || ok != tc.hasPulse {
				t.Errorf("PulseAge = %v, %v, want %v, %v", a, ok, tc.pulseAge, tc.hasPulse)
			}
			if a, ok := tc.st.FixAge(t0); a != tc.fixAge || ok != tc.hasFix {
				t.Errorf("FixAge = %v, %v, want %v, %v", a, ok, tc.fixAge, tc.hasFix)
			}
		})
	}
}

// TestHoldoverSinceAndAges drives the discipline through a PPS outage:
// holdover_since is the tick that entered HOLDOVER and stays through
// re-acquisition; the pulse age grows while the fix age stays under a
// second as long as NMEA keeps coming; the reason is never empty.
func TestHoldoverSinceAndAges(t *testing.T) {
	b := newBench(t, clocktest.OscillatorConfig{InitialOffset: 2 * time.Millisecond, FrequencyErrorPPB: 5000, WanderPPB: 2, Seed: 9}, 2*time.Microsecond)
	for i := 0; i < 60; i++ {
		b.second(true, true, true)
	}
	s := b.d.Status()
	if _, ok := s.HoldoverSince(); s.State != Locked || ok {
		t.Fatalf("state %v, holdover %v: want LOCKED, not in holdover", s.State, ok)
	}
	if a, ok := s.PulseAge(b.osc.Now()); !ok || a > time.Second {
		t.Fatalf("pulse age %v (%v) while locked, want under 1 s", a, ok)
	}
	var entered time.Time
	for i := 0; i < 30; i++ {
		b.second(false, true, true) // NMEA, no PPS
		if s := b.d.Status(); s.State == Holdover && entered.IsZero() {
			entered = b.osc.Now() // the tick at the end of the second
		}
	}
	s = b.d.Status()
	since, ok := s.HoldoverSince()
	if !ok || !since.Equal(entered) {
		t.Fatalf("holdover since %v (%v), want the tick that entered it, %v", since, ok, entered)
	}
	now := b.osc.Now()
	if a, _ := s.PulseAge(now); a < 29*time.Second || a > 31*time.Second {
		t.Errorf("pulse age %v after 30 s without PPS, want about 30 s", a)
	}
	if a, ok := s.FixAge(now); !ok || a > time.Second {
		t.Errorf("fix age %v with NMEA every second, want under 1 s", a)
	}
	if s.Why() == "" || s.Reason == "" {
		t.Errorf("HOLDOVER with reason %q", s.Reason)
	}
	for i := 0; i < 3; i++ {
		b.second(true, true, true) // the reference returns: re-acquiring in HOLDOVER
	}
	if s := b.d.Status(); s.State != Holdover {
		t.Errorf("state %v 3 s after the PPS returned, want HOLDOVER while re-acquiring", s.State)
	} else if got, _ := s.HoldoverSince(); !got.Equal(entered) {
		t.Errorf("re-acquiring moved holdover since to %v, want %v", got, entered)
	}
	for i := 0; i < 60; i++ {
		b.second(true, true, true)
	}
	if s := b.d.Status(); s.State != Locked || !s.StateSince.After(entered) {
		t.Errorf("state %v since %v, want LOCKED again after %v", s.State, s.StateSince, entered)
	}
}
