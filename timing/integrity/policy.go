package integrity

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// State is the node's integrity state.
type State int

// The states, in increasing distrust.
const (
	// StateTrusted: follow GNSS, publish the discipline's bound.
	StateTrusted State = iota
	// StateSuspect: follow GNSS, publish the bound widened by
	// PolicyConfig.Widening (or the residual time error of an earlier
	// untrusted episode, if larger) and say so (attestation, /health).
	StateSuspect
	// StateUntrusted: stop following GNSS and hold over on the
	// oscillator, the bound widened by the time error the evidence
	// measured (Residual); stop claiming stratum 1 once the holdover
	// bound passes policy.
	StateUntrusted
)

func (s State) String() string {
	switch s {
	case StateTrusted:
		return "trusted"
	case StateSuspect:
		return "suspect"
	case StateUntrusted:
		return "untrusted"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// PolicyConfig configures a Policy. Zero fields take the defaults.
type PolicyConfig struct {
	// TTL is how long a piece of evidence stays active after it was last
	// reported, per detector (default 10 s; the witness check, which
	// runs every few minutes, 20 min).
	TTL map[string]time.Duration
	// Escalate: suspect evidence from this many different detectors at
	// once makes the node untrusted (default 2): independent symptoms of
	// one attack.
	Escalate int
	// HoldOff is how long no untrusted-level evidence must be active
	// before the node leaves untrusted, for suspect (default 1 h).
	HoldOff time.Duration
	// SuspectClear is how long no suspect-or-worse evidence must be
	// active before the node is trusted again (default 10 min).
	SuspectClear time.Duration
	// Widening is added to the published bound while suspect (default
	// 250 µs: about the resolution of the bench's witnesses, which catch
	// a drag at 190–290 µs; an error below that can build up unseen
	// when the local checks are blind. See docs/INTEGRITY.md).
	Widening time.Duration
}

func (c PolicyConfig) withDefaults() PolicyConfig {
	ttl := map[string]time.Duration{DetectorWitness: 20 * time.Minute}
	for k, v := range c.TTL {
		ttl[k] = v
	}
	c.TTL = ttl
	if c.Escalate <= 0 {
		c.Escalate = 2
	}
	if c.HoldOff <= 0 {
		c.HoldOff = time.Hour
	}
	if c.SuspectClear <= 0 {
		c.SuspectClear = 10 * time.Minute
	}
	if c.Widening <= 0 {
		c.Widening = 250 * time.Microsecond
	}
	return c
}

// Transition is one change of state with the evidence behind it: on the
// way up the evidence active then, on the way down the evidence that had
// put the node where it was (now cleared).
type Transition struct {
	At       time.Time
	From, To State
	Why      string
	Evidence []Evidence
}

// Policy turns evidence into the integrity state. It is not safe for
// concurrent use; the daemon owns it in one goroutine.
type Policy struct {
	cfg     PolicyConfig
	state   State
	since   time.Time
	latest  map[Key]Evidence
	lastUp  time.Time // last time untrusted-level conditions held
	lastSus time.Time // last time suspect-or-worse conditions held
	cause   []Evidence
	why     string // of the last transition up
	// residual is the largest GNSS time error measured by evidence that
	// made the node untrusted (Evidence.TimeError), kept until an
	// operator clears it: GNSS time proven that far off once cannot be
	// shown right again by the local checks, which lose sight of a
	// constant offset or a steady drag once their held oscillator line
	// has aged, and the witnesses see no finer than their own
	// uncertainty.
	residual time.Duration
	// gnss is the largest error GNSS time could have by the latest
	// comparison with the held-over clock (MeasureGNSS), and when.
	gnss      time.Duration
	gnssAt    time.Time
	gnssDrift float64 // ns/s, HoldoverCheck.Drift with gnss (0: not measured)
	// departure is the node's latest move against the witnesses'
	// history (MeasureWitnesses); its floor is kept as the residual on a
	// move to untrusted while it is fresh.
	departure Departure
	// drift is how fast (ns/s) the GNSS followed since driftFrom may move
	// further off: the drift measured against the held-over clock when
	// the node left untrusted. The suspect widening grows by it.
	drift     float64
	driftFrom time.Time
	// suspectSince is since when GNSS may have been false, as judged on
	// the latest move to untrusted (SuspectSince).
	suspectSince time.Time
	lastTrusted  time.Time // when the node last left trusted
}

// NewPolicy returns a policy in StateTrusted since now.
func NewPolicy(cfg PolicyConfig, now time.Time) *Policy {
	return &Policy{cfg: cfg.withDefaults(), since: now, latest: map[Key]Evidence{}}
}

// State returns the current state and since when it holds.
func (p *Policy) State() (State, time.Time) { return p.state, p.since }

// FollowGNSS reports whether the discipline may steer by GNSS.
func (p *Policy) FollowGNSS() bool { return p.state != StateUntrusted }

// Bound returns the bound to publish at now given the discipline's:
// widened by Widening.
func (p *Policy) Bound(now time.Time, b time.Duration) time.Duration {
	return (&Status{Widening: p.Widening(now), Enforced: true}).Bound(b)
}

// Widening is what the published bound carries on top of the
// discipline's. Trusted: nothing. Untrusted: the residual, the largest
// time error measured by the evidence that made it so (the node followed
// GNSS until then and its clock holds over from there, while the
// holdover bound grows from the locked one by the oscillator's stability
// alone). Suspect: PolicyConfig.Widening, or the residual if larger (a
// node back from untrusted follows a GNSS that may still be as far off),
// grown by the drift GNSS showed against the held-over clock since the
// node followed it again, a second ahead (a published Status serves for
// up to a second).
func (p *Policy) Widening(now time.Time) time.Duration {
	switch p.state {
	case StateSuspect:
		return max(p.cfg.Widening, p.grown(now.Add(time.Second)))
	case StateUntrusted:
		return p.residual
	}
	return 0
}

// grown is the residual with the drift's growth up to now.
func (p *Policy) grown(now time.Time) time.Duration {
	return growBy(p.residual, p.drift, p.driftFrom, now)
}

// growBy is d grown at rate ns/s (its magnitude) from since to now,
// rounded up and saturated; d itself before since.
func growBy(d time.Duration, rate float64, since, now time.Time) time.Duration {
	rate = math.Abs(rate)
	if rate == 0 || !now.After(since) {
		return d
	}
	g := math.Ceil(rate * now.Sub(since).Seconds())
	if g >= float64(math.MaxInt64-d) {
		return time.Duration(math.MaxInt64)
	}
	return d + time.Duration(g)
}

// Drift is how fast (ns/s) the suspect widening grows: the drift GNSS
// showed against the held-over clock when the node last followed it
// again (0: none measured).
func (p *Policy) Drift() float64 { return p.drift }

// Residual is the GNSS time error measured by evidence that made the node
// untrusted, kept until an operator clears it; while it is not zero the
// node does not return to trusted.
func (p *Policy) Residual() time.Duration { return p.residual }

// MeasureGNSS records the largest error GNSS time can have at now, as
// measured against the node's held-over clock (HoldoverCheck.GNSSBound),
// and how fast it may be moving (HoldoverCheck.Drift, ns/s; 0 if not
// measured). If the node leaves untrusted within holdoverFresh of it, the
// residual takes the error and the widening grows by the drift from then
// on: the node then follows a GNSS that may be that far off and still
// moving, and the PPS check, restarted, cannot tell a drag that goes on
// steadily from a frequency.
func (p *Policy) MeasureGNSS(now time.Time, d time.Duration, driftNsPerS float64) {
	p.gnss, p.gnssAt, p.gnssDrift = d, now, max(driftNsPerS, 0)
}

// MeasureWitnesses records the node's move against the witnesses'
// history (WitnessDeparture). If the node becomes untrusted within
// witnessFresh of it, the residual is at least its floor
// (Departure.Floor), extended at its rate: a drag slower than the
// oscillator's own drift teaches the PPS check's held line part of itself
// before the check sees it, and the node's clock against that line then
// misses that part.
func (p *Policy) MeasureWitnesses(d Departure) { p.departure = d }

// JudgeWitnesses is what a caller does with the witnesses' history
// after each new measurement, the daemon's guard and the integrity bench
// alike: it hands the node's move against them to the policy
// (MeasureWitnesses) and returns the quorum's evidence against nodeBound
// (CheckWitnesses), for the caller to count and Observe.
func (p *Policy) JudgeWitnesses(now time.Time, nodeBound time.Duration, hist []Measurement, cfg WitnessConfig) []Evidence {
	if d, ok := WitnessDeparture(now, hist); ok {
		p.MeasureWitnesses(d)
	}
	_, evs := CheckWitnesses(now, nodeBound, hist, cfg)
	return evs
}

// witnessFresh is how long a departure stays usable: a few polls.
const witnessFresh = 10 * time.Minute

// freshDeparture is the latest departure if it is fresh at now.
func (p *Policy) freshDeparture(now time.Time) (Departure, bool) {
	d := p.departure
	age := now.Sub(d.At)
	return d, !d.At.IsZero() && age >= 0 && age <= witnessFresh
}

// witnessFloor is the fresh departure's floor extended to now, else 0.
func (p *Policy) witnessFloor(now time.Time) time.Duration {
	d, ok := p.freshDeparture(now)
	if !ok {
		return 0
	}
	f, ok := d.Floor()
	if !ok {
		return 0
	}
	return growBy(f, d.Rate, d.At, now)
}

// SuspectSince is since when the GNSS the node followed may have been
// false, as judged when the node last became untrusted: the earliest
// onset the evidence measured (a PPS alarm's clean line ends before the
// windows that moved: Values["onset_s"] before the evidence), else the
// evidence's time, or when the node left trusted if it had gone suspect
// first (it followed GNSS while suspect). Zero before any untrusted
// episode. The discipline holds over from its state before it
// (timing.Discipline.SetSuspectSince).
func (p *Policy) SuspectSince() time.Time { return p.suspectSince }

// onset is the earliest time evs say their condition began (see
// SuspectSince), at most now.
func onset(now time.Time, evs []Evidence) time.Time {
	t := now
	for _, e := range evs {
		at := e.At
		if o, ok := e.Values["onset_s"]; ok && o > 0 && o < 1e6 {
			at = at.Add(-time.Duration(o * float64(time.Second)))
		}
		if at.Before(t) {
			t = at
		}
	}
	return t
}

// measured returns the largest time error that evs measured.
func measured(evs []Evidence) time.Duration {
	var m time.Duration
	for _, e := range evs {
		if d, ok := e.TimeError(); ok && e.Level >= LevelSuspect {
			m = max(m, d)
		}
	}
	return m
}

// Observe records evidence; Evaluate acts on it.
func (p *Policy) Observe(evs ...Evidence) {
	for _, e := range evs {
		if old, ok := p.latest[e.Key()]; !ok || !e.At.Before(old.At) {
			p.latest[e.Key()] = e
		}
	}
}

func (p *Policy) ttl(det string) time.Duration {
	if d, ok := p.cfg.TTL[det]; ok {
		return d
	}
	return 10 * time.Second
}

// Active returns the evidence still active at now, strongest first.
func (p *Policy) Active(now time.Time) []Evidence {
	var out []Evidence
	for k, e := range p.latest {
		if now.Sub(e.At) > p.ttl(e.Detector) {
			delete(p.latest, k)
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Evidence) int {
		if a.Level != b.Level {
			return int(b.Level - a.Level)
		}
		if a.Detector != b.Detector {
			if a.Detector < b.Detector {
				return -1
			}
			return 1
		}
		if a.Reason < b.Reason {
			return -1
		}
		if a.Reason > b.Reason {
			return 1
		}
		return 0
	})
	return out
}

// Evaluate updates the state at now and returns the transition, if any.
// Distrust rises at once; it falls one step at a time, from untrusted
// only after HoldOff without untrusted-level evidence (the residual then
// takes the GNSS error MeasureGNSS last measured) and to trusted only
// after SuspectClear without any, and never while a residual time error
// is kept (Residual).
func (p *Policy) Evaluate(now time.Time) (Transition, bool) {
	active := p.Active(now)
	target := StateTrusted
	detectors := map[string]bool{}
	var strong []Evidence
	for _, e := range active {
		switch e.Level {
		case LevelUntrusted:
			target = StateUntrusted
			strong = append(strong, e)
			detectors[e.Detector] = true
		case LevelSuspect:
			detectors[e.Detector] = true
			strong = append(strong, e)
		}
	}
	if target != StateUntrusted && len(detectors) > 0 {
		target = StateSuspect
		if len(detectors) >= p.cfg.Escalate {
			target = StateUntrusted
		}
	}
	if target == StateUntrusted {
		p.lastUp = now
	}
	if target >= StateSuspect {
		p.lastSus = now
	}
	move := func(to State, why string, evs []Evidence) (Transition, bool) {
		tr := Transition{At: now, From: p.state, To: to, Why: why, Evidence: evs}
		if tr.From == StateTrusted {
			p.lastTrusted = now
		}
		p.state, p.since = to, now
		if to > tr.From {
			p.cause, p.why = evs, why
		}
		if to == StateUntrusted {
			// Untrusted again: the GNSS followed may have moved as far
			// as the drift allowed; the next release measures afresh.
			p.residual = max(p.grown(now), measured(evs), p.witnessFloor(now))
			p.drift = 0
			p.suspectSince = onset(now, evs)
			if tr.From == StateSuspect && p.lastTrusted.Before(p.suspectSince) {
				p.suspectSince = p.lastTrusted
			}
		}
		return tr, true
	}
	switch {
	case target > p.state:
		why := "evidence"
		if target == StateUntrusted && !hasLevel(strong, LevelUntrusted) {
			why = fmt.Sprintf("suspect evidence from %d detectors", len(detectors))
		}
		return move(target, why, strong)
	case p.state == StateUntrusted && now.Sub(p.lastUp) >= p.cfg.HoldOff:
		why := fmt.Sprintf("no untrusted evidence for %v", p.cfg.HoldOff)
		if !p.gnssAt.IsZero() && now.Sub(p.gnssAt) <= holdoverFresh {
			p.residual = max(p.residual, p.gnss)
			if p.gnssDrift > 0 {
				p.drift, p.driftFrom = p.gnssDrift, now
				why += fmt.Sprintf("; GNSS moved up to %.1f ns/s against the held-over clock, the widening grows by that", p.drift)
			}
		}
		return move(StateSuspect, why, p.cause)
	case p.state == StateSuspect && target == StateTrusted && p.residual == 0 &&
		now.Sub(p.lastSus) >= p.cfg.SuspectClear && now.Sub(p.since) >= p.cfg.SuspectClear:
		return move(StateTrusted, fmt.Sprintf("no suspect evidence for %v", p.cfg.SuspectClear), p.cause)
	}
	return Transition{}, false
}

func hasLevel(evs []Evidence, l Level) bool {
	for _, e := range evs {
		if e.Level == l {
			return true
		}
	}
	return false
}
