package integrity

import (
	"slices"
	"time"
)

// Status is a snapshot of a Policy for readers in other goroutines (the
// HTTP handlers, the NTP server, the metrics collector): the policy itself
// belongs to one goroutine, which publishes a new Status after every
// evaluation. A published Status is never modified.
type Status struct {
	State State
	Since time.Time
	// Widening is what the published bound carries on top of the
	// discipline's now, and for the next second (Policy.Widening).
	Widening time.Duration
	// Residual is the GNSS time error an untrusted episode measured,
	// kept until an operator clears it (Policy.Residual).
	Residual time.Duration
	// Active is the evidence active at the evaluation, strongest first.
	Active []Evidence
	// Last is the latest transition; nil before the first.
	Last *Transition
	// Enforced is false when the daemon only monitors: the state is
	// reported, but GNSS is followed and the bound is not widened.
	Enforced bool
	// Departure is the node's latest move against the witnesses'
	// history while it is fresh (Policy.MeasureWitnesses); nil without.
	Departure *Departure
}

// Bound returns the bound to publish given the discipline's b: never
// smaller than b.
func (s *Status) Bound(b time.Duration) time.Duration {
	if s == nil || !s.Enforced || s.Widening <= 0 {
		return b
	}
	if b > time.Duration(1<<63-1)-s.Widening {
		return time.Duration(1<<63 - 1) // saturate, never wrap
	}
	return b + s.Widening
}

// FollowGNSS reports whether the discipline may steer by GNSS.
func (s *Status) FollowGNSS() bool { return s == nil || !s.Enforced || s.State != StateUntrusted }

// Status returns an enforced snapshot of the policy at now, with last as
// the latest transition (the caller keeps it: Evaluate hands it out once).
func (p *Policy) Status(now time.Time, last *Transition) *Status {
	st := &Status{State: p.state, Since: p.since, Active: slices.Clone(p.Active(now)), Enforced: true}
	st.Widening, st.Residual = p.Widening(now), p.residual
	if d, ok := p.freshDeparture(now); ok {
		st.Departure = &d
	}
	if last != nil {
		t := *last
		t.Evidence = slices.Clone(t.Evidence)
		st.Last = &t
	}
	return st
}
