package attacksim

import (
	"testing"
	"time"

	"github.com/aunsorm/timenode/timing/integrity"
)

// TestCleanDay: 24 simulated hours of each clean scenario raise no
// transition at all.
func TestCleanDay(t *testing.T) {
	for _, s := range Scenarios() {
		t.Run(s.Name, func(t *testing.T) {
			r := Run(s, nil, 24*time.Hour, 0)
			if r.FalseAlarms != 0 || r.Final != integrity.StateTrusted {
				t.Fatalf("%d false alarms, final %v: %v", r.FalseAlarms, r.Final, r.Transitions)
			}
		})
	}
}

// TestAttacks: every modelled attack reaches the state it should, and the
// drags are caught before the true error passes 1 ms.
func TestAttacks(t *testing.T) {
	s := Scenarios()[0]
	for _, a := range Attacks() {
		t.Run(a.Name, func(t *testing.T) {
			r := Run(s, &a, 6*time.Hour, 30*time.Hour)
			if r.FalseAlarms != 0 {
				t.Fatalf("false alarm before the onset: %v", r.Transitions)
			}
			switch a.Expect {
			case integrity.StateUntrusted:
				if r.Untrusted < 0 {
					t.Fatalf("never untrusted (first %q, final %v)", r.First, r.Final)
				}
				if r.MaxErrBeforeUntrusted >= 1e6 && a.Name != "push 1 ms" {
					t.Fatalf("true error reached %.0f ns before untrusted", r.MaxErrBeforeUntrusted)
				}
			case integrity.StateSuspect:
				if r.Detected < 0 || r.Final == integrity.StateTrusted {
					t.Fatalf("not suspect (first %q, final %v)", r.First, r.Final)
				}
			case integrity.StateTrusted:
				if r.Detected >= 0 {
					t.Fatalf("left trusted: %v", r.Transitions)
				}
			}
			t.Logf("first %s, detected %v, untrusted %v, max error %.3g/%.3g ns", r.First, r.Detected, r.Untrusted, r.MaxErrBeforeDetect, r.MaxErrBeforeUntrusted)
		})
	}
}
