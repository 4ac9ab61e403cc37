package integrity

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// Level is how much a piece of evidence weighs in the policy.
type Level int

const (
	// LevelInfo is recorded and counted but does not change the state:
	// conditions the discipline already handles (no pulses, too few
	// witnesses answering).
	LevelInfo Level = iota
	// LevelSuspect makes the node suspect: serve, with a widened bound.
	LevelSuspect
	// LevelUntrusted makes the node stop following GNSS.
	LevelUntrusted
)

func (l Level) String() string {
	switch l {
	case LevelInfo:
		return "info"
	case LevelSuspect:
		return "suspect"
	case LevelUntrusted:
		return "untrusted"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// Detector names, the first label of the per-reason metric.
const (
	DetectorPPS      = "pps"
	DetectorPosition = "position"
	DetectorReceiver = "receiver"
	DetectorWitness  = "witness"
)

// Evidence is one finding of one detector at one instant. A condition that
// lasts is reported again on every input that still shows it; the policy
// treats evidence as active until it has not been reported for a while.
type Evidence struct {
	At       time.Time
	Detector string
	Reason   string
	Level    Level
	// Values are the numbers behind the finding, in the units their
	// names say (snake_case with units, as in the logs).
	Values map[string]float64
}

// TimeError returns how far off the evidence measured the node's time (or
// the GNSS time it followed) to be, at most, when its values say: the
// node's clock against the PPS check's held oscillator line (AddNodeError)
// or, without it, GNSS against that line, plus the line's allowed error;
// a witness quorum's interval of true time minus node time; or one
// witness's offset plus its uncertainty. ok is false for evidence that
// measures no time (a receiver or position finding).
func (e Evidence) TimeError() (d time.Duration, ok bool) {
	v := e.Values
	abs := math.Abs
	var ns float64
	if n, ok1 := v["node_error_ns"]; ok1 {
		ns = abs(n) + abs(v["allowed_ns"])
	} else if h, ok1 := v["held_error_ns"]; ok1 {
		ns = abs(h) + abs(v["allowed_ns"])
	} else if lo, ok1 := v["lo_ns"]; ok1 {
		ns = math.Max(abs(lo), abs(v["hi_ns"]))
	} else if off, ok1 := v["offset_ns"]; ok1 {
		ns = abs(off) + abs(v["uncertainty_ns"])
	} else {
		return 0, false
	}
	return ceilDuration(ns), true
}

// ceilDuration is ns rounded up to a Duration, saturated (a NaN too) at
// the largest one: an error bound is never below the computed one and
// never wraps.
func ceilDuration(ns float64) time.Duration {
	if math.IsNaN(ns) || ns >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Ceil(ns))
}

// AddNodeError annotates the PPS check's evidence that measured GNSS
// against its held oscillator line (held_error_ns) with where the node's
// own clock is on that line: node_error_ns = stampOffsetNs − held_error_ns,
// where stampOffsetNs is the edge's time on the node's clock minus the
// second it marks (the offset the discipline measures, signed; the edge
// and the held error are both late-positive). A node that took in only
// part of a push before the check caught it then widens its bound by that
// part, not by the whole push. It returns evs.
func AddNodeError(evs []Evidence, stampOffsetNs float64) []Evidence {
	for _, e := range evs {
		if h, ok := e.Values["held_error_ns"]; ok && e.Detector == DetectorPPS {
			e.Values["node_error_ns"] = stampOffsetNs - h
		}
	}
	return evs
}

// Key identifies a detector's reason: one metric series per key.
type Key struct {
	Detector, Reason string
}

// Key returns e's detector and reason.
func (e Evidence) Key() Key { return Key{e.Detector, e.Reason} }

// String formats e for logs and test failures, values in name order.
func (e Evidence) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s (%s)", e.Detector, e.Reason, e.Level)
	names := make([]string, 0, len(e.Values))
	for n := range e.Values {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, " %s=%.6g", n, e.Values[n])
	}
	return b.String()
}

// Counter counts evidence per detector and reason. It is safe for
// concurrent use: detectors run in the daemon's loops, the metrics
// collector reads Snapshot.
type Counter struct {
	mu sync.Mutex
	n  map[Key]uint64
}

// NewCounter returns a counter that already holds a zero for every key in
// known, so that the exporter publishes those series before they happen.
func NewCounter(known ...Key) *Counter {
	c := &Counter{n: make(map[Key]uint64)}
	for _, k := range known {
		c.n[k] = 0
	}
	return c
}

// Add counts each piece of evidence once.
func (c *Counter) Add(evs ...Evidence) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[Key]uint64)
	}
	for _, e := range evs {
		c.n[e.Key()]++
	}
}

// Snapshot returns a copy of the counts.
func (c *Counter) Snapshot() map[Key]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[Key]uint64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// AllKeys lists every detector/reason this package can report, for
// NewCounter.
func AllKeys() []Key {
	var ks []Key
	for _, r := range PPSReasons {
		ks = append(ks, Key{DetectorPPS, r})
	}
	for _, r := range PositionReasons {
		ks = append(ks, Key{DetectorPosition, r})
	}
	for _, r := range ReceiverReasons {
		ks = append(ks, Key{DetectorReceiver, r})
	}
	for _, r := range WitnessReasons {
		ks = append(ks, Key{DetectorWitness, r})
	}
	return ks
}
