package netsvc

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/timing"
	"github.com/aunsorm/timenode/timing/integrity"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// integrityTiming is a discipline status with an integrity status.
type integrityTiming struct {
	st *timing.Status
	is *integrity.Status
}

func (f integrityTiming) Status() *timing.Status       { return f.st }
func (f integrityTiming) Integrity() *integrity.Status { return f.is }

var _ IntegritySource = integrityTiming{}

func TestIntegrityWidensEveryPublishedBound(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktest.NewManual(t0)
	cn0 := integrity.Evidence{At: t0, Detector: integrity.DetectorReceiver, Reason: integrity.ReasonCN0Uniform, Level: integrity.LevelSuspect,
		Values: map[string]float64{"cn0_sd_db": 0.4}}
	step := integrity.Evidence{At: t0, Detector: integrity.DetectorPPS, Reason: integrity.ReasonPhaseStep, Level: integrity.LevelUntrusted}
	locked := &timing.Status{State: timing.Locked, Stratum: 1, ErrorBound: 2 * time.Microsecond, BoundAsOf: t0, Updated: t0, MaxBound: time.Millisecond}
	holdover := &timing.Status{State: timing.Holdover, Stratum: 1, ErrorBound: 900 * time.Microsecond, BoundAsOf: t0, Updated: t0, MaxBound: time.Millisecond}
	tests := []struct {
		name         string
		st           *timing.Status
		is           *integrity.Status // nil: a source without integrity
		wantBound    time.Duration
		wantServable bool
		wantState    string // /health integrity.state, "" for none
		wantWarning  string
		wantSigned   string // the signed integrity field, as Integrity.String
		wantWhy      string // in /health's reason and Claims' error when not servable
	}{
		{"no integrity source", locked, nil, 2 * time.Microsecond, true, "", "", "off", ""},
		{"trusted", locked, &integrity.Status{State: integrity.StateTrusted, Since: t0, Enforced: true}, 2 * time.Microsecond, true, "trusted", "",
			"trusted (enforced)", ""},
		{"suspect widens", locked, &integrity.Status{State: integrity.StateSuspect, Since: t0, Enforced: true, Widening: 250 * time.Microsecond,
			Active: []integrity.Evidence{cn0}}, 252 * time.Microsecond, true, "suspect", "GNSS integrity suspect: error bound widened by 250µs",
			"suspect (enforced): receiver/cn0_uniform", ""},
		{"suspect monitored only", locked, &integrity.Status{State: integrity.StateSuspect, Since: t0, Active: []integrity.Evidence{cn0}},
			2 * time.Microsecond, true, "suspect", "", "suspect (monitored, not enforced): receiver/cn0_uniform", ""},
		{"suspect in holdover past policy", holdover, &integrity.Status{State: integrity.StateSuspect, Since: t0, Enforced: true, Widening: 250 * time.Microsecond},
			1150 * time.Microsecond, false, "suspect", "GNSS integrity suspect", "",
			"HOLDOVER: published error bound 1.15ms past the policy's 1ms (GNSS integrity suspect: bound widened by 250µs)"},
		// Fail closed: a node locked to a suspect GNSS serves no bound
		// past the policy either.
		{"suspect locked past policy", locked, &integrity.Status{State: integrity.StateSuspect, Since: t0, Enforced: true, Widening: 1200 * time.Microsecond,
			Active: []integrity.Evidence{cn0}}, 1202 * time.Microsecond, false, "suspect", "GNSS integrity suspect", "",
			"LOCKED: published error bound 1.202ms past the policy's 1ms (GNSS integrity suspect: bound widened by 1.2ms)"},
		{"suspect locked at policy", locked, &integrity.Status{State: integrity.StateSuspect, Since: t0, Enforced: true, Widening: 998 * time.Microsecond,
			Active: []integrity.Evidence{cn0}}, time.Millisecond, true, "suspect", "GNSS integrity suspect", "suspect (enforced): receiver/cn0_uniform", ""},
		{"suspect locked, a widening past policy monitored only", locked, &integrity.Status{State: integrity.StateSuspect, Since: t0, Widening: 1200 * time.Microsecond,
			Active: []integrity.Evidence{cn0}}, 2 * time.Microsecond, true, "suspect", "", "suspect (monitored, not enforced): receiver/cn0_uniform", ""},
		{"untrusted", holdover, &integrity.Status{State: integrity.StateUntrusted, Since: t0, Enforced: true, Active: []integrity.Evidence{step}},
			900 * time.Microsecond, true, "untrusted", "GNSS integrity untrusted", "untrusted (enforced): pps/phase_step", ""},
	}
	key, err := signer.GenerateDevelopment(rand.Reader, t0.Add(-time.Hour), 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sig := signer.NewSigner(key, clk.Now)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ts TimingSource = lockedTiming{tt.st}
			if tt.is != nil {
				ts = integrityTiming{tt.st, tt.is}
			}
			ntp := NTPStatus(clk, ts, [4]byte{})()
			if ntp.RootDispersion != tt.wantBound || ntp.Synchronized != tt.wantServable {
				t.Errorf("NTP root dispersion %v synchronized %v, want %v %v", ntp.RootDispersion, ntp.Synchronized, tt.wantBound, tt.wantServable)
			}
			_, rtBound, rtOK := RoughtimeSource(clk, ts).Now()
			if rtOK != tt.wantServable || (rtOK && rtBound != tt.wantBound) {
				t.Errorf("Roughtime radius %v ok %v, want %v %v", rtBound, rtOK, tt.wantBound, tt.wantServable)
			}
			api := &API{Clock: clk, Timing: ts, Signer: sig, AuthorityID: "test", MaxAge: 30 * time.Second,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			claims, err := api.Claims()
			if (err == nil) != tt.wantServable {
				t.Fatalf("Claims error %v, want servable %v", err, tt.wantServable)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantWhy) {
				t.Errorf("Claims error %q, want it to say %q", err, tt.wantWhy)
			}
			if err == nil && claims.ErrorBoundNs != int64(tt.wantBound) {
				t.Errorf("attested bound %d ns, want %d", claims.ErrorBoundNs, int64(tt.wantBound))
			}
			if err == nil {
				// Signed and verified, the field says what the bound was widened for.
				atts, err := sig.Attest(claims, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := signer.NewVerifier(sig.Keys()).Verify(atts[0], clk.Now(), nil); err != nil {
					t.Fatal(err)
				}
				if got := atts[0].Integrity.String(); got != tt.wantSigned {
					t.Errorf("signed integrity %q, want %q", got, tt.wantSigned)
				}
			}
			h, ok := api.CheckHealth()
			if ok != tt.wantServable || h.Clock.ErrorBoundNs != int64(tt.wantBound) {
				t.Errorf("/health ok %v bound %d, want %v %d", ok, h.Clock.ErrorBoundNs, tt.wantServable, int64(tt.wantBound))
			}
			if !ok && (h.Reason != "clock "+tt.wantWhy || h.Clock.Reason != strings.SplitN(tt.wantWhy, ": ", 2)[1]) {
				t.Errorf("/health reason %q, clock reason %q, want %q", h.Reason, h.Clock.Reason, "clock "+tt.wantWhy)
			}
			if a := AgentReply(clk, ts); (a == "down\n") == tt.wantServable {
				t.Errorf("agent reply %q with servable %v", a, tt.wantServable)
			}
			switch {
			case tt.wantState == "" && h.Integrity != nil:
				t.Errorf("/health has an integrity object without a source: %+v", h.Integrity)
			case tt.wantState != "" && (h.Integrity == nil || h.Integrity.State != tt.wantState):
				t.Errorf("/health integrity = %+v, want state %s", h.Integrity, tt.wantState)
			case tt.wantState != "" && len(h.Integrity.Evidence) != len(tt.is.Active):
				t.Errorf("/health evidence %+v, want %d", h.Integrity.Evidence, len(tt.is.Active))
			}
			warned := strings.Join(h.Clock.Warnings, "\n")
			if (tt.wantWarning == "") != (warned == "") || !strings.Contains(warned, tt.wantWarning) {
				t.Errorf("/health warnings %q, want %q", warned, tt.wantWarning)
			}
		})
	}
}

func TestIntegrityMetrics(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktest.NewManual(t0)
	st := &integrity.Status{State: integrity.StateSuspect, Since: t0, Enforced: true, Widening: 250 * time.Microsecond,
		Active: []integrity.Evidence{
			{At: t0, Detector: integrity.DetectorReceiver, Reason: integrity.ReasonCN0Uniform, Level: integrity.LevelSuspect},
			{At: t0, Detector: integrity.DetectorPPS, Reason: integrity.ReasonPPSMissing, Level: integrity.LevelInfo},
		},
		Departure: &integrity.Departure{At: t0.Add(-20 * time.Second), Move: -120 * time.Microsecond, StdErr: 15 * time.Microsecond, Rate: -10, Witnesses: 3}}
	counts := integrity.NewCounter(integrity.AllKeys()...)
	counts.Add(st.Active[0], st.Active[0])
	m := NewMetrics(clk, lockedTiming{&timing.Status{}}, nil)
	m.RegisterIntegrity(clk, Integrity{Status: func() *integrity.Status { return st }, Counts: counts.Snapshot,
		Witnesses: func() []integrity.Measurement {
			return []integrity.Measurement{{Witness: "rt1", At: t0.Add(-30 * time.Second), Offset: -40 * time.Microsecond, Uncertainty: 300 * time.Microsecond}}
		},
		// nts1 never answered: it has an up series, and no offset.
		Reach: func() []WitnessReach { return []WitnessReach{{"rt1", true, ""}, {"nts1", false, "unreachable"}} }})
	want := `
# HELP timenode_integrity_state 1 for the GNSS integrity state (trusted, suspect, untrusted), 0 for the others.
# TYPE timenode_integrity_state gauge
timenode_integrity_state{state="suspect"} 1
timenode_integrity_state{state="trusted"} 0
timenode_integrity_state{state="untrusted"} 0
# HELP timenode_integrity_detector_level Strongest evidence a detector has active: 0 none, 1 info, 2 suspect, 3 untrusted.
# TYPE timenode_integrity_detector_level gauge
timenode_integrity_detector_level{detector="position"} 0
timenode_integrity_detector_level{detector="pps"} 1
timenode_integrity_detector_level{detector="receiver"} 2
timenode_integrity_detector_level{detector="witness"} 0
# HELP timenode_integrity_bound_widening_seconds What the published error bound carries on top of the computed one (GNSS suspect).
# TYPE timenode_integrity_bound_widening_seconds gauge
timenode_integrity_bound_widening_seconds 0.00025
# HELP timenode_integrity_following_gnss 1 while the discipline is fed by GNSS, 0 while an untrusted GNSS is withheld from it.
# TYPE timenode_integrity_following_gnss gauge
timenode_integrity_following_gnss 1
# HELP timenode_integrity_witness_age_seconds Time since the witness's latest answer.
# TYPE timenode_integrity_witness_age_seconds gauge
timenode_integrity_witness_age_seconds{witness="rt1"} 30
# HELP timenode_integrity_witness_up 1 when the witness answered its latest query, 0 when that query failed or none has been answered yet; one series per configured witness.
# TYPE timenode_integrity_witness_up gauge
timenode_integrity_witness_up{witness="nts1"} 0
timenode_integrity_witness_up{witness="rt1"} 1
# HELP timenode_integrity_witness_move_seconds How far the node's clock moved against the witnesses over their history (up to 4 h; positive: ahead), the median witness's; absent without two witnesses measured over 20 min.
# TYPE timenode_integrity_witness_move_seconds gauge
timenode_integrity_witness_move_seconds -0.00012
# HELP timenode_integrity_witness_move_stderr_seconds Standard error of timenode_integrity_witness_move_seconds.
# TYPE timenode_integrity_witness_move_stderr_seconds gauge
timenode_integrity_witness_move_stderr_seconds 1.5e-05
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "timenode_integrity_state", "timenode_integrity_detector_level",
		"timenode_integrity_bound_widening_seconds", "timenode_integrity_following_gnss", "timenode_integrity_witness_age_seconds",
		"timenode_integrity_witness_up", "timenode_integrity_witness_move_seconds", "timenode_integrity_witness_move_stderr_seconds"); err != nil {
		t.Error(err)
	}
	// /health says the same, with the floor the move sets.
	h := NewHealthIntegrity(st)
	if w := h.WitnessMove; w == nil || w.MoveNs != -120e3 || w.StdErrNs != 15e3 || w.FloorNs != 165e3 || w.Witnesses != 3 || w.RateNsPerS != -10 {
		t.Errorf("/health witness_move %+v, want a move of -120 µs ± 15 µs, floor 165 µs", w)
	}
	// Without a measured move neither says anything.
	st2 := *st
	st2.Departure = nil
	if h := NewHealthIntegrity(&st2); h.WitnessMove != nil {
		t.Errorf("/health witness_move %+v without a measured move", h.WitnessMove)
	}
	m2 := NewMetrics(clk, lockedTiming{&timing.Status{}}, nil)
	m2.RegisterIntegrity(clk, Integrity{Status: func() *integrity.Status { return &st2 }})
	if n, err := testutil.GatherAndCount(m2.Registry(), "timenode_integrity_witness_move_seconds"); err != nil || n != 0 {
		t.Errorf("%d witness move series (%v) without a measured move", n, err)
	}
	n, err := testutil.GatherAndCount(m.Registry(), "timenode_integrity_evidence_total")
	if err != nil || n != len(integrity.AllKeys()) {
		t.Errorf("%d evidence series (%v), want one per known key: %d", n, err, len(integrity.AllKeys()))
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := -1.0
	for _, mf := range mfs {
		if mf.GetName() != "timenode_integrity_evidence_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			if l := s.GetLabel(); l[0].GetValue() == "receiver" && l[1].GetValue() == "cn0_uniform" {
				got = s.GetCounter().GetValue()
			}
		}
	}
	if got != 2 {
		t.Errorf("receiver/cn0_uniform evidence = %v, want 2", got)
	}
}

// TestAttestedIntegrity checks which reasons the signed field carries:
// suspect- and untrusted-level evidence only, once each, strongest first;
// the causing transition's while the state outlasts its evidence; at
// most signer.MaxIntegrityReasons.
func TestAttestedIntegrity(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ev := func(det, reason string, l integrity.Level) integrity.Evidence {
		return integrity.Evidence{At: t0, Detector: det, Reason: reason, Level: l}
	}
	step := ev(integrity.DetectorPPS, integrity.ReasonPhaseStep, integrity.LevelUntrusted)
	cn0 := ev(integrity.DetectorReceiver, integrity.ReasonCN0Uniform, integrity.LevelSuspect)
	info := ev(integrity.DetectorWitness, integrity.ReasonWitnessesInsufficient, integrity.LevelInfo)
	many := make([]integrity.Evidence, 40)
	for i := range many {
		many[i] = ev("pps", fmt.Sprintf("r%d", i), integrity.LevelSuspect)
	}
	for _, tc := range []struct {
		name string
		s    *integrity.Status
		want string
	}{
		{"off", nil, "off"},
		{"trusted, info only", &integrity.Status{State: integrity.StateTrusted, Enforced: true, Active: []integrity.Evidence{info}}, "trusted (enforced)"},
		{"untrusted", &integrity.Status{State: integrity.StateUntrusted, Enforced: true, Active: []integrity.Evidence{step, cn0, step, info}},
			"untrusted (enforced): pps/phase_step, receiver/cn0_uniform"},
		{"suspect after the evidence expired", &integrity.Status{State: integrity.StateSuspect, Enforced: true, Active: []integrity.Evidence{info},
			Last: &integrity.Transition{From: integrity.StateUntrusted, To: integrity.StateSuspect, Evidence: []integrity.Evidence{step}}},
			"suspect (enforced): pps/phase_step"},
		{"monitored", &integrity.Status{State: integrity.StateSuspect, Active: []integrity.Evidence{cn0}}, "suspect (monitored, not enforced): receiver/cn0_uniform"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AttestedIntegrity(tc.s)
			if got.String() != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
	got := AttestedIntegrity(&integrity.Status{State: integrity.StateSuspect, Enforced: true, Active: many})
	if len(got.Reasons) != signer.MaxIntegrityReasons || got.Validate() != nil {
		t.Fatalf("%d reasons kept of 40 (%v), want %d", len(got.Reasons), got.Validate(), signer.MaxIntegrityReasons)
	}
}

// witnessTiming is an integrity source whose witnesses are polled.
type witnessTiming struct {
	integrityTiming
	reach []WitnessReach
}

func (f witnessTiming) WitnessReach() []WitnessReach { return f.reach }

var _ WitnessReachSource = witnessTiming{}

// TestHealthListsWitnesses: /health lists every witness with whether it
// answered its latest query, in the source's order; a source without
// witnesses has no list in the JSON.
func TestHealthListsWitnesses(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktest.NewManual(t0)
	st := &timing.Status{State: timing.Locked, Stratum: 1, ErrorBound: 2 * time.Microsecond, BoundAsOf: t0, Updated: t0, MaxBound: time.Millisecond}
	is := &integrity.Status{State: integrity.StateTrusted, Since: t0, Enforced: true}
	key, err := signer.GenerateDevelopment(rand.Reader, t0.Add(-time.Hour), 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ts   TimingSource
		want string // the JSON of integrity.witnesses, "" for none
	}{
		{"three witnesses, two down", witnessTiming{integrityTiming{st, is}, []WitnessReach{{"nts.example:4460", false, "certificate"}, {"rt.example:2002", true, ""}, {"new.example:4460", false, ""}}},
			`[{"name":"nts.example:4460","up":false,"failure":"certificate"},{"name":"rt.example:2002","up":true},{"name":"new.example:4460","up":false}]`},
		{"no witness configured", witnessTiming{integrityTiming{st, is}, nil}, ""},
		{"a source without witnesses", integrityTiming{st, is}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &API{Clock: clk, Timing: tt.ts, Signer: signer.NewSigner(key, clk.Now), AuthorityID: "test", MaxAge: 30 * time.Second,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			h, _ := api.CheckHealth()
			b, err := json.Marshal(h.Integrity)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Witnesses json.RawMessage `json:"witnesses"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if string(got.Witnesses) != tt.want {
				t.Errorf("integrity.witnesses = %s, want %s", got.Witnesses, tt.want)
			}
		})
	}
}
