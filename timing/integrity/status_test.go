package integrity

import (
	"math"
	"testing"
	"time"
)

func TestStatusBound(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	suspect := Evidence{At: t0, Detector: DetectorReceiver, Reason: ReasonCN0Uniform, Level: LevelSuspect}
	untrusted := Evidence{At: t0, Detector: DetectorPPS, Reason: ReasonPhaseStep, Level: LevelUntrusted}
	tests := []struct {
		name       string
		evidence   []Evidence
		bound      time.Duration
		wantState  State
		wantBound  time.Duration
		wantFollow bool
	}{
		{"trusted publishes the discipline's bound", nil, 3 * time.Microsecond, StateTrusted, 3 * time.Microsecond, true},
		{"suspect widens", []Evidence{suspect}, 3 * time.Microsecond, StateSuspect, 253 * time.Microsecond, true},
		{"suspect saturates", []Evidence{suspect}, math.MaxInt64 - 1, StateSuspect, math.MaxInt64, true},
		{"untrusted stops following", []Evidence{untrusted}, 3 * time.Microsecond, StateUntrusted, 3 * time.Microsecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPolicy(PolicyConfig{}, t0)
			p.Observe(tt.evidence...)
			tr, moved := p.Evaluate(t0)
			var last *Transition
			if moved {
				last = &tr
			}
			st := p.Status(t0, last)
			if st.State != tt.wantState {
				t.Fatalf("state = %v, want %v", st.State, tt.wantState)
			}
			if got := st.Bound(tt.bound); got != tt.wantBound {
				t.Errorf("Bound(%v) = %v, want %v", tt.bound, got, tt.wantBound)
			}
			if got := st.FollowGNSS(); got != tt.wantFollow {
				t.Errorf("FollowGNSS = %v, want %v", got, tt.wantFollow)
			}
			if moved != (tt.wantState != StateTrusted) || (moved && (st.Last == nil || st.Last.To != tt.wantState)) {
				t.Errorf("last transition = %+v (moved %v)", st.Last, moved)
			}
			if len(st.Active) != len(tt.evidence) {
				t.Errorf("active = %v, want %v", st.Active, tt.evidence)
			}
		})
	}
	var none *Status
	if none.Bound(time.Second) != time.Second || !none.FollowGNSS() {
		t.Error("a nil Status must publish the bound unchanged and follow GNSS")
	}
	monitored := &Status{State: StateUntrusted, Widening: time.Millisecond}
	if monitored.Bound(time.Second) != time.Second || !monitored.FollowGNSS() {
		t.Error("a Status not enforced must publish the bound unchanged and follow GNSS")
	}
}
