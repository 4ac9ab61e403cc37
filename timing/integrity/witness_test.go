package integrity

import (
	"testing"
	"time"
)

func TestCheckWitnesses(t *testing.T) {
	now := t0
	const us, ms = time.Microsecond, time.Millisecond
	m := func(name string, off, unc time.Duration) Measurement {
		return Measurement{Witness: name, At: now.Add(-time.Minute), Offset: off, Uncertainty: unc}
	}
	tests := []struct {
		name    string
		bound   time.Duration
		in      []Measurement
		verdict WitnessVerdict
		reason  string // "" none
		level   Level
	}{
		{"three agree with the node", 10 * us, []Measurement{m("a", 50*us, 300*us), m("b", -20*us, 400*us), m("c", 0, 250*us)}, WitnessAgree, "", 0},
		{"quorum says GNSS is 2 ms off", 10 * us, []Measurement{m("a", 2*ms, 300*us), m("b", 2100*us, 400*us), m("c", 1900*us, 250*us)}, WitnessDisagree, ReasonQuorumDisagrees, LevelUntrusted},
		{"two of three say off", 10 * us, []Measurement{m("a", 2*ms, 300*us), m("b", 2100*us, 400*us), m("c", 0, 250*us)}, WitnessDisagree, ReasonQuorumDisagrees, LevelUntrusted},
		{"off by less than uncertainty plus bound", 100 * us, []Measurement{m("a", 350*us, 300*us), m("b", 450*us, 400*us)}, WitnessAgree, "", 0},
		{"one witness alone cannot untrust", 10 * us, []Measurement{m("a", 5*ms, 300*us)}, WitnessInsufficient, ReasonWitnessSplit, LevelSuspect},
		{"two witnesses disagree with each other", 10 * us, []Measurement{m("a", 5*ms, 300*us), m("b", -5*ms, 300*us)}, WitnessInsufficient, ReasonWitnessSplit, LevelSuspect},
		{"a broken witness outvoted", 10 * us, []Measurement{m("a", 5*ms, 300*us), m("b", 0, 300*us), m("c", 20*us, 300*us)}, WitnessAgree, ReasonWitnessOutlier, LevelInfo},
		{"none fresh", 10 * us, []Measurement{{Witness: "a", At: now.Add(-time.Hour), Offset: 5 * ms, Uncertainty: us}}, WitnessInsufficient, ReasonWitnessesInsufficient, LevelInfo},
		{"latest per witness counts", 10 * us, []Measurement{
			{Witness: "a", At: now.Add(-2 * time.Minute), Offset: 0, Uncertainty: 300 * us}, m("a", 2*ms, 300*us),
			{Witness: "b", At: now.Add(-3 * time.Minute), Offset: 0, Uncertainty: 300 * us}, m("b", 2*ms, 300*us),
		}, WitnessDisagree, ReasonQuorumDisagrees, LevelUntrusted},
		{"two on one side, two on the other", 10 * us, []Measurement{m("a", 2*ms, 300*us), m("b", 2*ms, 300*us), m("c", 0, 300*us), m("d", 0, 300*us)}, WitnessInsufficient, ReasonWitnessSplit, LevelSuspect},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, evs := CheckWitnesses(now, tc.bound, tc.in, WitnessConfig{})
			if res.Verdict != tc.verdict {
				t.Fatalf("verdict %v, want %v (%+v)", res.Verdict, tc.verdict, res)
			}
			if tc.reason == "" {
				if len(evs) != 0 {
					t.Fatalf("evidence %v, want none", evs)
				}
				return
			}
			if len(evs) == 0 || evs[0].Reason != tc.reason || evs[0].Level != tc.level {
				t.Fatalf("evidence %v, want %s at %v", evs, tc.reason, tc.level)
			}
		})
	}
}
