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
	if p.Bound(t0, time.Microsecond) != time.Microsecond || !p.FollowGNSS() {
		t.Fatal("trusted node altered")
	}
	p.Observe(Evidence{At: t0, Detector: DetectorReceiver, Reason: ReasonCN0Uniform, Level: LevelSuspect})
	p.Evaluate(t0)
	if p.Bound(t0, time.Microsecond) != 301*time.Microsecond || !p.FollowGNSS() {
		t.Fatalf("suspect: bound %v follow %v", p.Bound(t0, time.Microsecond), p.FollowGNSS())
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

// TestEvidenceTimeError: the time error each kind of evidence measured,
// and none for evidence that measures no time.
func TestEvidenceTimeError(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]float64
		want   time.Duration
		ok     bool
	}{
		{"pps held line", map[string]float64{"held_error_ns": -40e3, "allowed_ns": 6e3, "tau_s": 4}, 46 * time.Microsecond, true},
		{"pps, the node's clock on the held line", map[string]float64{"held_error_ns": 1e6, "allowed_ns": 6e3, "node_error_ns": -32e3}, 38 * time.Microsecond, true},
		{"witness quorum", map[string]float64{"lo_ns": 300e3, "hi_ns": 420e3, "agreeing": 3}, 420 * time.Microsecond, true},
		{"witness quorum, node ahead", map[string]float64{"lo_ns": -500e3, "hi_ns": -350e3}, 500 * time.Microsecond, true},
		{"one witness", map[string]float64{"offset_ns": -1e6, "uncertainty_ns": 250e3}, 1250 * time.Microsecond, true},
		{"fraction of a nanosecond rounds up", map[string]float64{"held_error_ns": 0.2}, 1, true},
		{"position", map[string]float64{"distance_m": 2000}, 0, false},
		{"no values", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Evidence{Values: tt.values}.TimeError()
			if got != tt.want || ok != tt.ok {
				t.Fatalf("TimeError = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestPolicyResidual: GNSS time measured off by an untrusted episode
// widens the bound by that much while the node holds over, at least that
// much once it follows GNSS again, and keeps it suspect; an episode that
// measured no time (a position jump) clears as before.
func TestPolicyResidual(t *testing.T) {
	step := Evidence{Detector: DetectorPPS, Reason: ReasonPhaseStep, Level: LevelUntrusted,
		Values: map[string]float64{"held_error_ns": 400e3, "allowed_ns": 20e3}}
	jump := Evidence{Detector: DetectorPosition, Reason: ReasonPositionJump, Level: LevelUntrusted,
		Values: map[string]float64{"distance_m": 2000}}
	const b = 3 * time.Microsecond
	tests := []struct {
		name                     string
		ev                       Evidence
		untrusted, suspect, last time.Duration // widening in each phase
		final                    State
	}{
		{"measured step", step, 420 * time.Microsecond, 420 * time.Microsecond, 420 * time.Microsecond, StateSuspect},
		{"position only", jump, 0, 250 * time.Microsecond, 0, StateTrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPolicy(PolicyConfig{}, t0)
			for s := range 30 {
				e := tt.ev
				e.At = t0.Add(time.Duration(s) * time.Second)
				p.Observe(e)
				p.Evaluate(e.At)
			}
			if st, _ := p.State(); st != StateUntrusted || p.Bound(t0, b) != b+tt.untrusted {
				t.Fatalf("during: %v, bound %v; want untrusted, %v", st, p.Bound(t0, b), b+tt.untrusted)
			}
			p.Evaluate(t0.Add(2 * time.Hour)) // past the hold-off: suspect, following GNSS
			if st, _ := p.State(); st != StateSuspect || !p.FollowGNSS() || p.Bound(t0, b) != b+tt.suspect {
				t.Fatalf("after the hold-off: %v, bound %v; want suspect, %v", st, p.Bound(t0, b), b+tt.suspect)
			}
			for h := 3; h < 48; h++ {
				p.Evaluate(t0.Add(time.Duration(h) * time.Hour))
			}
			st, _ := p.State()
			if st != tt.final || p.Bound(t0, b) != b+tt.last || p.Status(t0, nil).Residual != tt.untrusted {
				t.Fatalf("two days on: %v, bound %v, residual %v; want %v, %v", st, p.Bound(t0, b), p.Status(t0, nil).Residual, tt.final, b+tt.last)
			}
		})
	}
}

// TestMemoryKeepsTheResidual: a restart keeps the residual, and a file
// written before it was kept restores it from the evidence.
func TestMemoryKeepsTheResidual(t *testing.T) {
	p := NewPolicy(PolicyConfig{}, t0)
	p.Observe(Evidence{At: t0, Detector: DetectorWitness, Reason: ReasonQuorumDisagrees, Level: LevelUntrusted,
		Values: map[string]float64{"lo_ns": 600e3, "hi_ns": 700e3}})
	p.Evaluate(t0)
	p.Evaluate(t0.Add(3 * time.Hour)) // suspect, residual kept
	m := p.Memory(t0.Add(3 * time.Hour))
	if m.State != "suspect" || m.ResidualNs != 700e3 {
		t.Fatalf("memory %+v", m)
	}
	q := NewPolicy(PolicyConfig{}, t0)
	if _, err := q.Restore(m, t0.Add(4*time.Hour)); err != nil || q.Residual() != 700*time.Microsecond {
		t.Fatalf("restored residual %v, %v", q.Residual(), err)
	}
	old := p.Memory(t0)
	old.State, old.ResidualNs, old.Evidence = "untrusted", 0, p.cause
	r := NewPolicy(PolicyConfig{}, t0)
	if _, err := r.Restore(old, t0.Add(time.Hour)); err != nil || r.Residual() != 700*time.Microsecond {
		t.Fatalf("residual from an older file's evidence %v, %v", r.Residual(), err)
	}
}

// TestAddNodeError: the PPS check's held-line evidence learns where the
// node's clock is on that line (the edge's offset minus GNSS's deviation);
// other evidence is left alone.
func TestAddNodeError(t *testing.T) {
	held := Evidence{Detector: DetectorPPS, Reason: ReasonPhaseStep, Level: LevelUntrusted,
		Values: map[string]float64{"held_error_ns": 1e6, "allowed_ns": 6e3}}
	unstable := Evidence{Detector: DetectorPPS, Reason: ReasonPPSUnstable, Level: LevelSuspect, Values: map[string]float64{"bad_fraction": 0.4}}
	witness := Evidence{Detector: DetectorWitness, Reason: ReasonQuorumDisagrees, Level: LevelUntrusted,
		Values: map[string]float64{"lo_ns": 1e6, "hi_ns": 2e6, "held_error_ns": 5}}
	// The push arrived 1 ms late and the node's clock had moved 32 µs
	// towards it: the edge is 968 µs late on the node's clock.
	evs := AddNodeError([]Evidence{held, unstable, witness}, 968e3)
	if got := evs[0].Values["node_error_ns"]; got != -32e3 {
		t.Fatalf("node error %v, want -32000", got)
	}
	if d, _ := evs[0].TimeError(); d != 38*time.Microsecond {
		t.Fatalf("TimeError %v, want 38µs", d)
	}
	for _, e := range evs[1:] {
		if _, ok := e.Values["node_error_ns"]; ok {
			t.Fatalf("%s/%s annotated: %v", e.Detector, e.Reason, e.Values)
		}
	}
}
