package integrity

import (
	"testing"
	"time"
)

func TestPolicy(t *testing.T) {
	sus := func(det string) Evidence { return Evidence{Detector: det, Reason: "r_" + det, Level: LevelSuspect} }
	unt := Evidence{Detector: DetectorPPS, Reason: ReasonPhaseStep, Level: LevelUntrusted}
	info := Evidence{Detector: DetectorPPS, Reason: ReasonPPSMissing, Level: LevelInfo}
	type step struct {
		at   time.Duration // since t0; evidence is reported every second up to `until`
		ev   Evidence
		upTo time.Duration
	}
	tests := []struct {
		name  string
		steps []step
		// want lists the transitions as "from>to@seconds". Evidence
		// stays active 10 s after its last report (the witness's 20 min),
		// so the hold-off and the clear period count from then.
		want []string
	}{
		{"info changes nothing", []step{{0, info, 10 * time.Minute}}, nil},
		{"suspect, then trusted after 10 min clear", []step{{60 * time.Second, sus(DetectorReceiver), 120 * time.Second}},
			[]string{"trusted>suspect@60", "suspect>trusted@730"}},
		{"untrusted holds off an hour, then suspect, then trusted", []step{{60 * time.Second, unt, 100 * time.Second}},
			[]string{"trusted>untrusted@60", "untrusted>suspect@3710", "suspect>trusted@4310"}},
		{"two detectors suspect escalate", []step{{60 * time.Second, sus(DetectorReceiver), 90 * time.Second}, {70 * time.Second, sus(DetectorWitness), 80 * time.Second}},
			[]string{"trusted>suspect@60", "suspect>untrusted@70", "untrusted>suspect@3700", "suspect>trusted@4300"}},
		{"evidence returning restarts the hold-off", []step{{60 * time.Second, unt, 61 * time.Second}, {1800 * time.Second, unt, 1801 * time.Second}},
			[]string{"trusted>untrusted@60", "untrusted>suspect@5411", "suspect>trusted@6011"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPolicy(PolicyConfig{}, t0)
			var got []string
			for s := time.Duration(0); s <= 3*time.Hour; s += time.Second {
				now := t0.Add(s)
				for _, st := range tc.steps {
					if s >= st.at && s <= st.upTo {
						e := st.ev
						e.At = now
						p.Observe(e)
					}
				}
				if tr, ok := p.Evaluate(now); ok {
					got = append(got, tr.From.String()+">"+tr.To.String()+"@"+itoa(int(s/time.Second)))
					if tr.To > tr.From && len(tr.Evidence) == 0 {
						t.Fatalf("transition %v without evidence", tr)
					}
					if tr.To < tr.From && tr.Why == "" {
						t.Fatalf("clearing transition %v without a reason", tr)
					}
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("transitions %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("transitions %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestPolicyBoundAndFollow(t *testing.T) {
	p := NewPolicy(PolicyConfig{Widening: 300 * time.Microsecond}, t0)
	if p.Bound(time.Microsecond) != time.Microsecond || !p.FollowGNSS() {
		t.Fatal("trusted node altered")
	}
	p.Observe(Evidence{At: t0, Detector: DetectorReceiver, Reason: ReasonCN0Uniform, Level: LevelSuspect})
	p.Evaluate(t0)
	if p.Bound(time.Microsecond) != 301*time.Microsecond || !p.FollowGNSS() {
		t.Fatalf("suspect: bound %v follow %v", p.Bound(time.Microsecond), p.FollowGNSS())
	}
	p.Observe(Evidence{At: t0, Detector: DetectorPPS, Reason: ReasonPhaseStep, Level: LevelUntrusted})
	p.Evaluate(t0)
	if p.FollowGNSS() {
		t.Fatal("untrusted node follows GNSS")
	}
	if s, _ := p.State(); s != StateUntrusted {
		t.Fatalf("state %v", s)
	}
}

func TestCounter(t *testing.T) {
	c := NewCounter(AllKeys()...)
	c.Add(Evidence{Detector: DetectorPPS, Reason: ReasonPhaseStep}, Evidence{Detector: DetectorPPS, Reason: ReasonPhaseStep})
	got := c.Snapshot()
	if got[Key{DetectorPPS, ReasonPhaseStep}] != 2 || got[Key{DetectorWitness, ReasonQuorumDisagrees}] != 0 {
		t.Fatalf("counts %v", got)
	}
	if _, ok := got[Key{DetectorReceiver, ReasonWeekRollover}]; !ok {
		t.Fatal("known key missing before it happened")
	}
}
