package integrity

import (
	"context"
	"math"
	"slices"
	"time"
)

// Reasons of the witness check.
const (
	// ReasonQuorumDisagrees: a quorum of witnesses, agreeing with each
	// other, places true time outside the node's time ± bound.
	ReasonQuorumDisagrees = "quorum_disagrees"
	// ReasonWitnessSplit: some witness places true time outside the
	// node's bound, but the witnesses do not form a majority quorum (too
	// few answer, or they disagree with each other): suspect, never
	// untrusted on its say alone.
	ReasonWitnessSplit = "witness_split"
	// ReasonWitnessOutlier: a quorum agrees with the node and one
	// witness does not: that witness is wrong (info, for the operator).
	ReasonWitnessOutlier = "witness_outlier"
	// ReasonWitnessesInsufficient: fewer fresh witnesses than the
	// quorum (info).
	ReasonWitnessesInsufficient = "witnesses_insufficient"
)

// WitnessReasons lists the witness check's reasons.
var WitnessReasons = []string{ReasonQuorumDisagrees, ReasonWitnessSplit, ReasonWitnessOutlier, ReasonWitnessesInsufficient}

// Measurement is one witness's view of the node's clock: an honest
// witness guarantees that witness time − node time lies within
// Offset ± Uncertainty at At.
type Measurement struct {
	Witness string
	// At is the node's clock when the measurement was made.
	At time.Time
	// Offset is witness time minus node time (positive: the node is
	// behind).
	Offset time.Duration
	// Uncertainty covers the witness's own radius (Roughtime RADI, NTP
	// root distance) and half the round trip (the path asymmetry is
	// unknown).
	Uncertainty time.Duration
}

// Witness is an authenticated time source outside the GNSS path.
type Witness interface {
	// Name identifies the witness in evidence and metrics.
	Name() string
	// Measure asks the witness once; ctx bounds the exchange.
	Measure(ctx context.Context) (Measurement, error)
}

// WitnessConfig configures CheckWitnesses. Zero fields take the defaults.
type WitnessConfig struct {
	// Quorum is how many mutually consistent witnesses it takes to call
	// GNSS wrong (default 2, never less than 2).
	Quorum int
	// MaxAge of a measurement (default 15 min).
	MaxAge time.Duration
}

func (c WitnessConfig) withDefaults() WitnessConfig {
	if c.Quorum < 2 {
		c.Quorum = 2
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 15 * time.Minute
	}
	return c
}

// WitnessVerdict is the outcome of CheckWitnesses.
type WitnessVerdict int

// The verdicts.
const (
	WitnessInsufficient WitnessVerdict = iota // no decisive majority quorum
	WitnessAgree                              // a quorum is consistent with the node
	WitnessDisagree                           // a quorum places true time outside the node's bound
)

func (v WitnessVerdict) String() string {
	return [...]string{"insufficient", "agree", "disagree"}[v]
}

// WitnessResult is what CheckWitnesses found.
type WitnessResult struct {
	Verdict WitnessVerdict
	// Fresh is how many witnesses had a measurement within MaxAge;
	// Agreeing how many of them form the largest consistent group.
	Fresh, Agreeing int
	// Lo and Hi bound witness time − node time as the consistent group
	// sees it (the intersection of its intervals).
	Lo, Hi time.Duration
}

// CheckWitnesses judges the latest fresh measurement of each witness
// against the node's published bound (the true time is within node time ±
// nodeBound if the node is right). The largest group of witnesses whose
// intervals intersect (Marzullo) decides when it has at least Quorum
// members and is a strict majority of the fresh witnesses: if its
// intersection lies wholly outside ±nodeBound, GNSS time is off
// (quorum_disagrees). Otherwise any witness excluding ±nodeBound raises
// witness_split (suspect) or, outvoted by a quorum agreeing with the node,
// witness_outlier (info). ms may hold each witness's history (up to
// WitnessHistory): the latest of each is judged, and a disagreeing
// quorum's history dates the drag (Values["onset_s"]; witnessOnset).
func CheckWitnesses(now time.Time, nodeBound time.Duration, ms []Measurement, cfg WitnessConfig) (WitnessResult, []Evidence) {
	cfg = cfg.withDefaults()
	latest := map[string]Measurement{}
	for _, m := range ms {
		if now.Sub(m.At) > cfg.MaxAge || m.At.After(now) || m.Uncertainty < 0 {
			continue
		}
		if old, ok := latest[m.Witness]; !ok || m.At.After(old.At) {
			latest[m.Witness] = m
		}
	}
	fresh := make([]Measurement, 0, len(latest))
	for _, m := range latest {
		fresh = append(fresh, m)
	}
	slices.SortFunc(fresh, func(a, b Measurement) int {
		if a.Witness < b.Witness {
			return -1
		}
		if a.Witness > b.Witness {
			return 1
		}
		return 0
	})
	res := WitnessResult{Fresh: len(fresh)}
	ev := func(reason string, level Level, vals map[string]float64) Evidence {
		if vals == nil {
			vals = map[string]float64{}
		}
		vals["fresh"], vals["quorum"], vals["node_bound_ns"] = float64(len(fresh)), float64(cfg.Quorum), float64(nodeBound)
		return Evidence{At: now, Detector: DetectorWitness, Reason: reason, Level: level, Values: vals}
	}
	excludes := func(m Measurement) bool {
		return m.Offset-m.Uncertainty > nodeBound || m.Offset+m.Uncertainty < -nodeBound
	}

	count, lo, hi, unique := largestOverlap(fresh)
	res.Agreeing, res.Lo, res.Hi = count, lo, hi
	decisive := unique && count >= cfg.Quorum && 2*count > len(fresh)
	if decisive {
		if lo > nodeBound || hi < -nodeBound {
			res.Verdict = WitnessDisagree
			vals := map[string]float64{"agreeing": float64(count), "lo_ns": float64(lo), "hi_ns": float64(hi)}
			// The group is the witnesses whose interval holds the
			// intersection; their history dates the drag.
			group := map[string]bool{}
			for _, m := range fresh {
				if m.Offset-m.Uncertainty <= lo && m.Offset+m.Uncertainty >= hi {
					group[m.Witness] = true
				}
			}
			if age, ok := witnessOnset(now, ms, group, float64(lo+hi)); ok {
				vals["onset_s"] = math.Round(age)
			}
			return res, []Evidence{ev(ReasonQuorumDisagrees, LevelUntrusted, vals)}
		}
		res.Verdict = WitnessAgree
		var evs []Evidence
		for i, m := range fresh {
			if excludes(m) {
				evs = append(evs, ev(ReasonWitnessOutlier, LevelInfo, map[string]float64{
					"witness_index": float64(i), "offset_ns": float64(m.Offset), "uncertainty_ns": float64(m.Uncertainty)}))
			}
		}
		return res, evs
	}
	res.Verdict = WitnessInsufficient
	for i, m := range fresh {
		if excludes(m) {
			return res, []Evidence{ev(ReasonWitnessSplit, LevelSuspect, map[string]float64{
				"witness_index": float64(i), "offset_ns": float64(m.Offset), "uncertainty_ns": float64(m.Uncertainty)})}
		}
	}
	if len(fresh) < cfg.Quorum {
		return res, []Evidence{ev(ReasonWitnessesInsufficient, LevelInfo, nil)}
	}
	return res, nil
}

// largestOverlap finds the most intervals Offset±Uncertainty sharing a
// point, the intersection of one such group, and whether that group is
// the only one of its size (two disjoint groups of equal size decide
// nothing).
func largestOverlap(ms []Measurement) (count int, lo, hi time.Duration, unique bool) {
	type edge struct {
		at    time.Duration
		start bool
	}
	var es []edge
	for _, m := range ms {
		es = append(es, edge{m.Offset - m.Uncertainty, true}, edge{m.Offset + m.Uncertainty, false})
	}
	// Starts before ends at the same point: touching intervals agree.
	slices.SortFunc(es, func(a, b edge) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		if a.start == b.start {
			return 0
		}
		if a.start {
			return -1
		}
		return 1
	})
	n, groups := 0, 0
	for i, e := range es {
		if e.start {
			n++
			if n > count {
				count, lo, groups = n, e.at, 1
				hi = es[i+1].at // the next edge ends the peak
			} else if n == count {
				groups++
			}
		} else {
			n--
		}
	}
	return count, lo, hi, groups == 1
}
