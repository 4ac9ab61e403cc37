package attacksim

import (
	"log/slog"
	"math"
	"time"

	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/timing"
	"github.com/aunsorm/timenode/timing/integrity"
	"github.com/aunsorm/timenode/timing/internal/simclock"
)

// HoldWindow is how long a run goes on after the node became untrusted:
// the holdover on the oscillator that follows, whose bound must cover
// the error the attack left behind.
const HoldWindow = 2 * time.Hour

// initialOffsetNs is the local clock's error at power-on (an RTC's).
const initialOffsetNs = 200e6

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
	// |true error| of the node's clock from the onset up to those moments
	// (ns).
	MaxErrBeforeDetect, MaxErrBeforeUntrusted float64
	// FalseAlarms counts transitions before the onset.
	FalseAlarms int
	// Final is the state at the end of the run.
	Final       integrity.State
	Transitions []integrity.Transition
	Counts      map[integrity.Key]uint64
	// From the onset (from the start for a clean run) to the end of the
	// run: Served is the seconds the node served time (timing's
	// ServableWith with the published bound), Uncovered those in which the
	// published bound did not cover the true error, MaxErrServed the
	// largest |true error| while serving and MaxExcess the largest
	// |true error| − bound (ns; 0 when always covered).
	Served, Uncovered       int
	MaxErrServed, MaxExcess float64
	// UncoveredBefore is how many of the uncovered seconds came before
	// the node left trusted: the detection's latency, which no bound
	// derived from the evidence can cover.
	UncoveredBefore int
	// LastServed is how long after the onset the node last served
	// (−1: never, or a clean run).
	LastServed time.Duration
}

// Coverage is the share of served seconds whose published bound covered
// the true error (NaN if none was served).
func (r Result) Coverage() float64 {
	if r.Served == 0 {
		return math.NaN()
	}
	return 1 - float64(r.Uncovered)/float64(r.Served)
}

// Run simulates s for onset+after seconds with attack a (nil: clean)
// starting at onset. The node is the shipped timing.Discipline on a
// simulated clock, gated by the integrity policy as the daemon's guard
// gates it (enforce mode): while untrusted, no pulse and no fix reach the
// discipline, which holds over. A run ends HoldWindow after the node
// became untrusted.
func Run(s Scenario, a *Attack, onset, after time.Duration) Result {
	return RunFor(s, a, onset, after, HoldWindow)
}

// RunFor is Run with the run ending window after the node became untrusted.
func RunFor(s Scenario, a *Attack, onset, after, window time.Duration) Result {
	w := newWorld(s)
	clk := simclock.New(Epoch, initialOffsetNs)
	disc := timing.New(timing.DefaultConfig(), clk, slog.New(slog.DiscardHandler))
	ppsDet := integrity.NewPPSDetector(integrity.PPSConfig{Model: s.Model()})
	hold := integrity.NewHoldoverCheck()
	pos := integrity.NewPositionDetector(integrity.PositionConfig{})
	rec := integrity.NewReceiverDetector(integrity.ReceiverConfig{Leap: FixedLeap(18)})
	pol := integrity.NewPolicy(integrity.PolicyConfig{}, Epoch)
	cnt := integrity.NewCounter(integrity.AllKeys()...)
	res := Result{Scenario: s.Name, Onset: onset, Detected: -1, Untrusted: -1, LastServed: -1}
	if a != nil {
		res.Attack = a.Name
	}
	var witnessHist []integrity.Measurement // the last WitnessHistory, as the guard keeps
	poll := int(s.WitnessPoll / time.Second)
	start := int(onset / time.Second)
	end := int((onset + after) / time.Second)
	var prevOsc float64
	var seq uint64
	withheld := false
	for k := 0; k < end; k++ {
		in := w.next(k)
		attacked := a != nil && k >= start
		if attacked {
			a.Apply(k-start, &in)
		}
		edge := int64(k) * 1e9
		clk.Advance(edge)
		clk.Osc, prevOsc = in.OscNs-prevOsc, in.OscNs
		now := Epoch.Add(time.Duration(k) * time.Second)

		// What the node publishes at this second, scored against the
		// truth before this second's pulse moves anything.
		// The policy's own Bound: a Status snapshot would clone and sort
		// the active evidence every simulated second.
		st := disc.Status()
		local := clk.Now()
		publish := func(b time.Duration) time.Duration { return pol.Bound(now, b) }
		published := publish(st.BoundAt(local))
		if (attacked || a == nil) && st.ServableWith(local, publish) {
			res.score(math.Abs(clk.X), float64(published), res.Detected < 0)
			if attacked {
				res.LastServed = time.Duration(k-start) * time.Second
			}
		}

		var evs []integrity.Evidence
		// The edge's offset on the node's clock places the node on the
		// PPS check's held line, as the daemon's guard does. While the
		// node's clock runs free (holding over, or unsynchronized once
		// its bound passed policy), the same offset compares GNSS with
		// the bound it publishes; the guard does that whatever the PPS check
		// sees, so the witnesses-only runs do it too.
		ppsCheck := a == nil || !a.NoPPSCheck
		if !withheld || !st.FreeRunning() {
			hold.Reset()
		}
		for _, e := range []struct {
			present bool
			phase   float64
		}{{in.PPSPresent, in.PPSPhaseNs}, {in.PPSExtra, in.PPSExtraNs}} {
			if !e.present {
				continue
			}
			off := clk.X + e.phase - in.OscNs
			if ppsCheck {
				evs = append(evs, integrity.AddNodeError(ppsDet.Observe(now, int64(k), e.phase), off)...)
			}
			if withheld && st.FreeRunning() {
				evs = append(evs, hold.Observe(now, off, published)...)
			}
		}
		if ppsCheck {
			evs = append(evs, ppsDet.Tick(now)...)
		}
		if d, ok := hold.GNSSBound(now); ok {
			drift, _ := hold.Drift(now)
			pol.MeasureGNSS(now, d, drift)
		}
		evs = append(evs, pos.Observe(now, in.Fix)...)
		evs = append(evs, rec.Observe(in.Snap)...)
		// Witnesses are asked about the node's own clock; their answers
		// count only once the discipline has a bound worth checking.
		checkable := st.State == timing.Locked || st.State == timing.Holdover
		for i, p := range s.Witnesses {
			if poll > 0 && checkable && k%poll == i*poll/len(s.Witnesses) {
				witnessHist = integrity.KeepWitnessHistory(witnessHist, now, w.measure(p, now, clk.X))
				evs = append(evs, pol.JudgeWitnesses(now, published, witnessHist, integrity.WitnessConfig{})...)
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

		follow := pol.FollowGNSS()
		if !follow && !withheld {
			// As the guard: once, before the discipline holds over.
			disc.SetSuspectSince(pol.SuspectSince())
		}
		withheld = !follow
		disc.SetWithheld(withheld)
		if follow {
			seq = feedPulses(disc, clk, in, seq)
		}
		clk.Advance(edge + int64(simclock.NMEADelay))
		if follow {
			disc.HandleFix(gnss.Fix{UTC: in.Snap.Time, Valid: in.Fix.Valid && in.Snap.FixValid && !in.Snap.Time.IsZero(),
				Received: clk.Now(), Satellites: in.Snap.Used()})
		}
		clk.Ticks(edge, disc.Tick)

		if !attacked {
			continue
		}
		err := math.Abs(clk.X)
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
				end = min(end, k+1+int(window/time.Second))
			}
		}
	}
	res.Final, _ = pol.State()
	res.Counts = cnt.Snapshot()
	return res
}

// score counts one served second with true error errNs and published
// bound boundNs, undetected while the node has not left trusted.
func (r *Result) score(errNs, boundNs float64, undetected bool) {
	r.Served++
	r.MaxErrServed = math.Max(r.MaxErrServed, errNs)
	if errNs > boundNs {
		r.Uncovered++
		if undetected {
			r.UncoveredBefore++
		}
		r.MaxExcess = math.Max(r.MaxExcess, errNs-boundNs)
	}
}

// feedPulses timestamps this second's edges on the node's clock, in the
// order they arrive: the world's phase against the oscillator is the
// edge's lateness, so a GNSS time error e moves the stamp by −e and a
// node following it ends e off.
func feedPulses(disc *timing.Discipline, clk *simclock.Clock, in Inputs, seq uint64) uint64 {
	var at []float64
	if in.PPSPresent {
		at = append(at, in.PPSPhaseNs-in.OscNs)
	}
	if in.PPSExtra {
		at = append(at, in.PPSExtraNs-in.OscNs)
		if len(at) == 2 && at[1] < at[0] {
			at[0], at[1] = at[1], at[0]
		}
	}
	for _, late := range at {
		seq++
		disc.HandlePulse(pps.Pulse{Local: clk.Now().Add(time.Duration(math.Round(late))), Seq: seq, Quality: pps.QualitySimulated})
	}
	return seq
}

// FixedLeap is a LeapTable that always answers n (the bench's dates lie
// in one leap epoch).
type FixedLeap int

// GPSMinusUTC returns n.
func (n FixedLeap) GPSMinusUTC(time.Time) (int, bool) { return int(n), true }
