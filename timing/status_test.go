package timing

import (
	"math"
	"testing"
	"time"
)

// TestBoundAtRoundsUp: the bound grows by BoundGrowthPPB over the time
// since BoundAsOf, and a fraction of a nanosecond counts as a whole one, so
// the published bound is never smaller than the computed one.
func TestBoundAtRoundsUp(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		growthPPB float64
		age       time.Duration
		want      time.Duration
	}{
		{"no growth", 0, time.Hour, 1000},
		{"0.3 ns after a second", 0.3, time.Second, 1001},
		{"exactly 2 ns", 2, time.Second, 1002},
		{"282 ns/s for 16 min", 282, 16 * time.Minute, 1000 + 270720},
		{"before BoundAsOf: no growth", 5, -time.Second, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Status{ErrorBound: 1000, BoundGrowthPPB: tc.growthPPB, BoundAsOf: t0}
			if got := s.BoundAt(t0.Add(tc.age)); got != tc.want {
				t.Errorf("BoundAt = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBoundAtSaturates: a bound with no limit in sight (the estimator's
// largest Duration two seconds ahead, or already now) reads as the largest
// Duration, never as a wrapped or extrapolated number.
func TestBoundAtSaturates(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		bound     time.Duration
		growthPPB float64
		age       time.Duration
		want      time.Duration
	}{
		{"unbounded growth, a moment later", time.Millisecond, math.MaxFloat64, 256 * time.Microsecond, math.MaxInt64},
		{"unbounded growth, at BoundAsOf", time.Millisecond, math.MaxFloat64, 0, time.Millisecond},
		{"largest bound growing", math.MaxInt64, 1e6, time.Second, math.MaxInt64},
		{"huge growth for a long time", time.Second, 4.6e18, time.Minute, math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Status{ErrorBound: tc.bound, BoundGrowthPPB: tc.growthPPB, BoundAsOf: t0}
			if got := s.BoundAt(t0.Add(tc.age)); got != tc.want {
				t.Errorf("BoundAt = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestServableWith: the widened bound decides in HOLDOVER, and LOCKED
// when a widening takes it past the policy; no state that is not
// servable becomes servable.
func TestServableWith(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	widen := func(by time.Duration) func(time.Duration) time.Duration {
		return func(b time.Duration) time.Duration { return b + by }
	}
	tests := []struct {
		name  string
		state State
		bound time.Duration
		max   time.Duration
		by    time.Duration
		want  bool
	}{
		{"locked, widened past policy", Locked, 10 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, false},
		{"locked, widened to policy", Locked, 10 * time.Microsecond, time.Millisecond, 990 * time.Microsecond, true},
		{"locked, not widened", Locked, 10 * time.Microsecond, time.Millisecond, 0, true},
		{"locked, no policy", Locked, 10 * time.Microsecond, 0, time.Second, true},
		// The lock thresholds judge a locked discipline's own bound.
		{"locked, own bound past policy", Locked, 2 * time.Millisecond, time.Millisecond, 0, true},
		{"locked, own bound past policy, widened", Locked, 2 * time.Millisecond, time.Millisecond, time.Nanosecond, false},
		{"holdover, within policy widened", Holdover, 500 * time.Microsecond, time.Millisecond, 250 * time.Microsecond, true},
		{"holdover, at policy widened", Holdover, 750 * time.Microsecond, time.Millisecond, 250 * time.Microsecond, true},
		{"holdover, past policy only widened", Holdover, 800 * time.Microsecond, time.Millisecond, 250 * time.Microsecond, false},
		{"holdover, no policy", Holdover, time.Second, 0, time.Second, true},
		{"acquiring", Acquiring, time.Microsecond, time.Millisecond, 0, false},
		{"unsynchronized", Unsynchronized, time.Microsecond, time.Millisecond, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Status{State: tt.state, ErrorBound: tt.bound, BoundAsOf: t0, MaxBound: tt.max}
			if got := s.ServableWith(t0, widen(tt.by)); got != tt.want {
				t.Fatalf("ServableWith = %v, want %v", got, tt.want)
			}
			// Only the published bound can take a servable state out,
			// and PastPolicy never judges one that is not servable.
			if past := s.PastPolicy(t0, widen(tt.by)); (s.Servable(t0) && past == tt.want) || (!s.Servable(t0) && past) {
				t.Fatalf("PastPolicy = %v with Servable %v, ServableWith %v", past, s.Servable(t0), tt.want)
			}
		})
	}
}

func TestStatusFreeRunning(t *testing.T) {
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		st   Status
		want bool
	}{
		{"holdover", Status{State: Holdover, ErrorBound: time.Microsecond, BoundAsOf: at}, true},
		{"unsynchronized past policy", Status{State: Unsynchronized, ErrorBound: 20 * time.Millisecond, BoundAsOf: at}, true},
		{"unsynchronized without a bound", Status{State: Unsynchronized, ErrorBound: math.MaxInt64, BoundAsOf: at}, false},
		{"never bounded", Status{State: Unsynchronized}, false},
		{"free run", Status{State: Freerun}, false},
		{"locked", Status{State: Locked, ErrorBound: time.Microsecond, BoundAsOf: at}, false},
		{"acquiring", Status{State: Acquiring, ErrorBound: time.Microsecond, BoundAsOf: at}, false},
	}
	for _, tt := range tests {
		if got := tt.st.FreeRunning(); got != tt.want {
			t.Errorf("%s: FreeRunning() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
