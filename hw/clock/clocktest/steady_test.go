package clocktest

import (
	"testing"
	"time"
)

// TestSteadyFollowsTheMonotonicClock checks that Steady starts at the host
// time, advances as the timers do and that its wall reading is its
// monotonic one: the difference of two readings is the same whether Go
// takes it from the monotonic parts or from the wall parts alone.
func TestSteadyFollowsTheMonotonicClock(t *testing.T) {
	s := NewSteady()
	if d := s.Now().Sub(time.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("a new Steady reads %v off the host clock", d)
	}
	a := s.Now()
	time.Sleep(20 * time.Millisecond)
	b := s.Now()
	mono := b.Sub(a)
	wall := b.Round(0).Sub(a.Round(0))
	if mono < 20*time.Millisecond {
		t.Fatalf("Steady advanced %v over a 20 ms sleep", mono)
	}
	if mono != wall {
		t.Fatalf("monotonic difference %v, wall difference %v: they must be one clock", mono, wall)
	}
}
