package timing

import (
	"testing"
	"time"
)

// TestWithheldHoldsOverFromBeforeTheDrag: a GNSS dragged at 100 ns/s for
// 5 min pulls the servo's frequency along; withheld with the time it
// became suspect (SetSuspectSince), the clock holds the frequency it had
// before, its error stays where the drag left it, and its own bound
// covers that error: the estimator tracks from its state before the
// drag. Withheld without that time, the clock goes on at the drag's
// rate (the old behaviour, and what a drag that predates the history
// still gets).
func TestWithheldHoldsOverFromBeforeTheDrag(t *testing.T) {
	tests := []struct {
		name     string
		suspect  time.Duration // how long before the withholding GNSS became suspect (0: not said)
		maxError time.Duration // the clock's error after 30 min of holdover, at most
		minError time.Duration // and at least
		// covered: the discipline's own bound covers the error throughout
		// (without a roll back only the policy's residual can: the drag
		// moved the clock before the holdover began).
		covered bool
		// lost: the pulses stop this long before GNSS is withheld, so the
		// clock is already in HOLDOVER at the dragged frequency (a fast
		// drag makes the servo reject the edges before the check fires).
		lost int
	}{
		{"rolled back to the onset", 5 * time.Minute, 40 * time.Microsecond, 0, true, 0},
		{"already holding over", 5 * time.Minute, 40 * time.Microsecond, 0, true, 10},
		{"no suspect time", 0, time.Second, 150 * time.Microsecond, false, 0},
		{"suspect for longer than the history", 5 * time.Hour, time.Second, 150 * time.Microsecond, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := lockedBench(t, 3*time.Millisecond, 7200)
			const drag = 300
			for i := range drag {
				// The edge's lateness grows 100 ns/s: GNSS time dragged.
				b.kick = time.Duration(i) * 100 * time.Nanosecond
				b.second(true, true, true)
			}
			for range tt.lost {
				b.second(false, false, true)
			}
			if s := b.d.Status().State; tt.lost > 0 && s != Holdover {
				t.Fatalf("%d s without pulses: %v, want HOLDOVER", tt.lost, s)
			}
			taken := b.osc.Now().Sub(b.ref.Now())
			if tt.suspect > 0 {
				b.d.SetSuspectSince(b.osc.Now().Add(-tt.suspect))
			}
			b.d.SetWithheld(true)
			for range 1800 {
				b.second(false, false, true)
				st := b.d.Status()
				err := b.osc.Now().Sub(b.ref.Now())
				if bd := st.BoundAt(b.osc.Now()); tt.covered && abs(err) > bd {
					t.Fatalf("%v into holdover: error %v outside the bound %v", time.Duration(b.sec-7500)*time.Second, err, bd)
				}
			}
			st := b.d.Status()
			err := b.osc.Now().Sub(b.ref.Now())
			if st.State != Holdover || abs(err) > tt.maxError || abs(err) < tt.minError {
				t.Fatalf("30 min withheld: %v, error %v (%v when withheld), want HOLDOVER within [%v, %v]",
					st.State, err, taken, tt.minError, tt.maxError)
			}
			t.Logf("error when withheld %v, after 30 min %v, bound %v", taken, err, st.BoundAt(b.osc.Now()))
		})
	}
}
