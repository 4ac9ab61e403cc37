package netsvc

import (
	"fmt"
	"slices"
	"time"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/timing"
	"github.com/aunsorm/timenode/timing/integrity"
)

// IntegritySource is implemented by a TimingSource that also judges
// whether its GNSS may be believed (timing/integrity). It is optional:
// everything that reads the bound for serving asks for it, so that a
// suspect GNSS widens the bound in NTP's root dispersion, Roughtime's
// radius, the attestations and /health alike.
type IntegritySource interface {
	// Integrity returns the latest published status, nil if none.
	Integrity() *integrity.Status
}

// WitnessReachSource is implemented by an IntegritySource whose
// witnesses are polled: /health lists each with whether it answered its
// latest query. Optional.
type WitnessReachSource interface {
	WitnessReach() []WitnessReach
}

// integrityOf returns ts's integrity status, nil when it has none.
func integrityOf(ts TimingSource) *integrity.Status {
	if is, ok := ts.(IntegritySource); ok {
		return is.Integrity()
	}
	return nil
}

// publishedBound is the bound the node serves at now: the discipline's,
// widened while the GNSS is suspect. Never smaller than the computed one.
func publishedBound(ts TimingSource, st *timing.Status, now time.Time) time.Duration {
	return integrityOf(ts).Bound(st.BoundAt(now))
}

// servable is Status.Servable with the published bound: in HOLDOVER the
// widened bound must be within policy too.
func servable(ts TimingSource, st *timing.Status, now time.Time) bool {
	return servableWith(integrityOf(ts), st, now)
}

// servableWith is servable with the integrity status is (nil: none)
// already read, so that a caller's bound, state and verdict come from one
// snapshot.
func servableWith(is *integrity.Status, st *timing.Status, now time.Time) bool {
	return st.ServableWith(now, is.Bound)
}

// whyNotServable says why st may not be served at now with the
// integrity status is (nil: none), for /health and the errors of what
// refuses to sign: the discipline's reason, or the published bound past
// the policy when only the integrity widening keeps the node out.
func whyNotServable(is *integrity.Status, st *timing.Status, now time.Time) string {
	if st.PastPolicy(now, is.Bound) {
		why := fmt.Sprintf("published error bound %v past the policy's %v", is.Bound(st.BoundAt(now)), st.MaxBound)
		if is != nil && is.Enforced && is.Widening > 0 {
			why += fmt.Sprintf(" (GNSS integrity %s: bound widened by %v)", is.State, is.Widening)
		}
		return why
	}
	return st.Why()
}

// AttestedIntegrity is the signed integrity field for s: nil when the
// node runs no integrity checks (s nil, --integrity=off). Its reasons are
// the suspect- and untrusted-level evidence active in s, as
// "detector/reason", strongest first; when none is active but the state
// is not trusted (the policy waits out its hold-off), the evidence of
// the latest transition, which caused the state. Info-level evidence
// (no pulses, too few witnesses) changes no state and is left to /health.
// At most signer.MaxIntegrityReasons are kept.
func AttestedIntegrity(s *integrity.Status) *signer.Integrity {
	if s == nil {
		return nil
	}
	in := &signer.Integrity{State: s.State.String(), Enforced: s.Enforced, Reasons: []string{}}
	add := func(evs []integrity.Evidence) {
		for _, e := range evs {
			r := e.Detector + "/" + e.Reason
			if e.Level >= integrity.LevelSuspect && len(in.Reasons) < signer.MaxIntegrityReasons && !slices.Contains(in.Reasons, r) {
				in.Reasons = append(in.Reasons, r)
			}
		}
	}
	add(s.Active)
	if len(in.Reasons) == 0 && s.State != integrity.StateTrusted && s.Last != nil {
		add(s.Last.Evidence)
	}
	return in
}

// HealthIntegrity is the GNSS integrity state in /health.
type HealthIntegrity struct {
	// State is "trusted", "suspect" or "untrusted".
	State string `json:"state"`
	Since string `json:"since"` // RFC 3339, local clock
	// Enforced is false when the node only monitors (--integrity=monitor):
	// then nothing served depends on State.
	Enforced bool `json:"enforced"`
	// FollowingGNSS is false while the discipline is kept off an
	// untrusted GNSS (it holds over on its oscillator).
	FollowingGNSS bool `json:"following_gnss"`
	// BoundWideningNs is what the published error bound carries on top
	// of the computed one (suspect, or untrusted after a measured error).
	BoundWideningNs int64 `json:"bound_widening_ns"`
	// ResidualErrorNs is the GNSS time error an untrusted episode
	// measured: while it is not zero the node stays at least suspect, its
	// bound widened by at least this much, until an operator clears it.
	ResidualErrorNs int64 `json:"residual_error_ns"`
	// Reasons lists the active evidence as "detector/reason".
	Reasons  []string         `json:"reasons"`
	Evidence []HealthEvidence `json:"evidence"`
	// LastTransition is the latest change of state, null before one.
	LastTransition *HealthTransition `json:"last_transition"`
	// WitnessMove is how far the node's clock moved against the
	// witnesses over their history; absent until two witnesses have
	// answered for 20 minutes.
	WitnessMove *HealthWitnessMove `json:"witness_move,omitempty"`
	// Witnesses lists every configured witness, in configuration order,
	// with whether it answered its latest query; absent without
	// witnesses.
	Witnesses []WitnessReach `json:"witnesses,omitempty"`
}

// WitnessReach is whether a witness answered its latest query, as
// /health lists it and timenode_integrity_witness_up exports it.
type WitnessReach struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
	// Failure classifies the latest query's failure while the witness
	// is not up (certificate, name, unreachable, rejected,
	// authentication, unsynchronised, protocol, other); empty before its
	// first query and while it answers. The journal has the error.
	Failure string `json:"failure,omitempty"`
}

// HealthWitnessMove is the node's move against the witnesses' history
// (integrity.Departure).
type HealthWitnessMove struct {
	At string `json:"at"` // RFC 3339, local clock
	// MoveNs is the node's clock minus true time now, minus the same at
	// the start of the witnesses' history (positive: ahead).
	MoveNs     int64   `json:"move_ns"`
	StdErrNs   int64   `json:"stderr_ns"`
	RateNsPerS float64 `json:"rate_ns_per_s"`
	Witnesses  int     `json:"witnesses"`
	// FloorNs is the floor under the node's time error that the move
	// sets (more than three standard errors), 0 when it sets none.
	FloorNs int64 `json:"floor_ns"`
}

// HealthEvidence is one active finding of a detector.
type HealthEvidence struct {
	Detector string             `json:"detector"`
	Reason   string             `json:"reason"`
	Level    string             `json:"level"`
	At       string             `json:"at"`
	Values   map[string]float64 `json:"values,omitempty"`
}

// HealthTransition is a change of integrity state and why.
type HealthTransition struct {
	At       string   `json:"at"`
	From     string   `json:"from"`
	To       string   `json:"to"`
	Why      string   `json:"why"`
	Evidence []string `json:"evidence"`
}

// NewHealthIntegrity renders s for /health.
func NewHealthIntegrity(s *integrity.Status) *HealthIntegrity {
	h := &HealthIntegrity{State: s.State.String(), Since: s.Since.UTC().Format(time.RFC3339Nano), Enforced: s.Enforced,
		FollowingGNSS: s.FollowGNSS(), BoundWideningNs: int64(s.Bound(0)), ResidualErrorNs: int64(s.Residual),
		Reasons: []string{}, Evidence: []HealthEvidence{}}
	for _, e := range s.Active {
		h.Reasons = append(h.Reasons, e.Detector+"/"+e.Reason)
		h.Evidence = append(h.Evidence, HealthEvidence{Detector: e.Detector, Reason: e.Reason, Level: e.Level.String(),
			At: e.At.UTC().Format(time.RFC3339Nano), Values: e.Values})
	}
	if d := s.Departure; d != nil {
		floor, _ := d.Floor()
		h.WitnessMove = &HealthWitnessMove{At: d.At.UTC().Format(time.RFC3339Nano), MoveNs: int64(d.Move), StdErrNs: int64(d.StdErr),
			RateNsPerS: d.Rate, Witnesses: d.Witnesses, FloorNs: int64(floor)}
	}
	if t := s.Last; t != nil {
		ht := &HealthTransition{At: t.At.UTC().Format(time.RFC3339Nano), From: t.From.String(), To: t.To.String(), Why: t.Why, Evidence: []string{}}
		for _, e := range t.Evidence {
			ht.Evidence = append(ht.Evidence, e.String())
		}
		h.LastTransition = ht
	}
	return h
}

// integrityWarning is the operator's line in /health's clock warnings,
// empty while trusted or only monitored.
func integrityWarning(s *integrity.Status) string {
	if s == nil || !s.Enforced {
		return ""
	}
	switch s.State {
	case integrity.StateSuspect:
		return fmt.Sprintf("GNSS integrity suspect: error bound widened by %v", s.Widening)
	case integrity.StateUntrusted:
		return "GNSS integrity untrusted: not following GNSS, holding over on the oscillator"
	}
	return ""
}
