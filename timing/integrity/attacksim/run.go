package attacksim

import (
	"math"
	"time"

	"github.com/aunsorm/timenode/timing/integrity"
)

// LockedBound is the discipline's published bound while locked that the
// witness check is given (about 4σ of a kernel PPS's 1 µs noise); the
// policy widens it while suspect.
const LockedBound = 5 * time.Microsecond

// Result is one run.
type Result struct {
	Scenario, Attack string
	// Onset is when the attack began; Detected and Untrusted how long
	// after it the node left trusted and became untrusted (−1: never).
	Onset, Detected, Untrusted time.Duration
	// First is the first evidence at suspect level or above after the
	// onset ("detector/reason").
	First string
	// MaxErrBeforeDetect and MaxErrBeforeUntrusted are the largest
	// |true error| of a node following GNSS from the onset up to those
	// moments (ns).
	MaxErrBeforeDetect, MaxErrBeforeUntrusted float64
	// FalseAlarms counts transitions before the onset.
	FalseAlarms int
	// Final is the state at the end of the run.
	Final       integrity.State
	Transitions []integrity.Transition
	Counts      map[integrity.Key]uint64
}

// Run simulates s for onset+after seconds with attack a (nil: clean)
// starting at onset. It stops early once the node is untrusted.
func Run(s Scenario, a *Attack, onset, after time.Duration) Result {
	w := newWorld(s)
	pps := integrity.NewPPSDetector(integrity.PPSConfig{Model: s.Model()})
	pos := integrity.NewPositionDetector(integrity.PositionConfig{})
	rec := integrity.NewReceiverDetector(integrity.ReceiverConfig{Leap: FixedLeap(18)})
	pol := integrity.NewPolicy(integrity.PolicyConfig{}, Epoch)
	cnt := integrity.NewCounter(integrity.AllKeys()...)
	res := Result{Scenario: s.Name, Onset: onset, Detected: -1, Untrusted: -1}
	if a != nil {
		res.Attack = a.Name
	}
	latest := map[string]integrity.Measurement{}
	poll := int(s.WitnessPoll / time.Second)
	start := int(onset / time.Second)
	end := int((onset + after) / time.Second)
	for k := 0; k < end; k++ {
		in := w.next(k)
		attacked := a != nil && k >= start
		if attacked {
			a.Apply(k-start, &in)
		}
		now := Epoch.Add(time.Duration(k) * time.Second)
		var evs []integrity.Evidence
		if a == nil || !a.NoPPSCheck {
			if in.PPSPresent {
				evs = append(evs, pps.Observe(now, int64(k), in.PPSPhaseNs)...)
			}
			if in.PPSExtra {
				evs = append(evs, pps.Observe(now, int64(k), in.PPSExtraNs)...)
			}
			evs = append(evs, pps.Tick(now)...)
		}
		evs = append(evs, pos.Observe(now, in.Fix)...)
		evs = append(evs, rec.Observe(in.Snap)...)
		for i, p := range s.Witnesses {
			if poll > 0 && k%poll == i*poll/len(s.Witnesses) {
				latest[p.Name] = w.measure(p, now, in.GNSSErrNs)
				ms := make([]integrity.Measurement, 0, len(latest))
				for _, m := range latest {
					ms = append(ms, m)
				}
				_, wev := integrity.CheckWitnesses(now, pol.Bound(LockedBound), ms, integrity.WitnessConfig{})
				evs = append(evs, wev...)
			}
		}
		cnt.Add(evs...)
		pol.Observe(evs...)
		if attacked && res.First == "" {
			for _, e := range evs {
				if e.Level >= integrity.LevelSuspect {
					res.First = e.Detector + "/" + e.Reason
					break
				}
			}
		}
		tr, moved := pol.Evaluate(now)
		if moved {
			res.Transitions = append(res.Transitions, tr)
			if !attacked {
				res.FalseAlarms++
			}
		}
		if !attacked {
			continue
		}
		err := math.Abs(in.GNSSErrNs)
		since := time.Duration(k-start) * time.Second
		state, _ := pol.State()
		if res.Detected < 0 {
			res.MaxErrBeforeDetect = math.Max(res.MaxErrBeforeDetect, err)
			if state != integrity.StateTrusted {
				res.Detected = since
			}
		}
		if res.Untrusted < 0 {
			res.MaxErrBeforeUntrusted = math.Max(res.MaxErrBeforeUntrusted, err)
			if state == integrity.StateUntrusted {
				res.Untrusted = since
				break
			}
		}
	}
	res.Final, _ = pol.State()
	res.Counts = cnt.Snapshot()
	return res
}

// FixedLeap is a LeapTable that always answers n (the bench's dates lie
// in one leap epoch).
type FixedLeap int

// GPSMinusUTC returns n.
func (n FixedLeap) GPSMinusUTC(time.Time) (int, bool) { return int(n), true }
