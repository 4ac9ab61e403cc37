package integrity

import (
	"math"
	"time"
)

// ReasonHoldoverDisagrees: while the node holds over, GNSS's pulses lie
// outside the bound the node publishes for its own clock.
const ReasonHoldoverDisagrees = "holdover_disagrees"

// holdoverMedian is how many edges the holdover check takes the median
// of: the PPS check's 7, enough to drop the 1 % latency spikes of a GPIO
// timestamp.
const holdoverMedian = 7

// holdoverFresh is how long a comparison stays usable (GNSSBound) and how
// far apart two edges may lie and still share a median.
const holdoverFresh = 10 * time.Second

// HoldoverCheck compares GNSS with the node's own clock while the node
// does not follow GNSS and holds over on its oscillator.
//
// An edge's offset on the node's clock is the node's error plus GNSS's
// (plus timestamp noise). While the node holds over, its error is within
// the bound it publishes, so GNSS is off by at least |offset| − bound and
// by at most |offset| + bound. The first is evidence: GNSS measurably
// off keeps the node from following it again, however much the PPS
// check's allowance has grown since its alarm. The second is what the
// policy keeps as the residual when the node does follow GNSS again
// (Policy.MeasureGNSS): the PPS check restarts afresh then, and a drag
// that goes on at a steady rate is a steady frequency to a fresh check,
// which it cannot see.
type HoldoverCheck struct {
	recent  []float64 // the last edges' offsets, oldest first
	scratch []float64 // recent, sorted for the median
	lastAt  time.Time
	// The latest comparison: the median offset and the bound, and when.
	median, bound float64
	at            time.Time
}

// NewHoldoverCheck returns a check with no edges.
func NewHoldoverCheck() *HoldoverCheck {
	return &HoldoverCheck{recent: make([]float64, 0, holdoverMedian), scratch: make([]float64, 0, holdoverMedian)}
}

// Observe takes one edge's offset from its second on the node's clock
// (ns, late positive, as AddNodeError) and the bound the node publishes
// for its clock now (the discipline's, widened by the policy). Call it
// only while GNSS is withheld from the discipline; Reset when it is
// followed again. A bound that is not finite (no bound yet) compares
// nothing.
func (h *HoldoverCheck) Observe(now time.Time, offsetNs float64, bound time.Duration) []Evidence {
	if bound <= 0 || bound == time.Duration(math.MaxInt64) || math.IsNaN(offsetNs) {
		h.Reset()
		return nil
	}
	if !h.lastAt.IsZero() && now.Sub(h.lastAt) > holdoverFresh {
		h.recent = h.recent[:0]
	}
	h.lastAt = now
	if len(h.recent) == holdoverMedian {
		h.recent = append(h.recent[:0], h.recent[1:]...)
	}
	h.recent = append(h.recent, offsetNs)
	if len(h.recent) < holdoverMedian {
		return nil
	}
	h.scratch = append(h.scratch[:0], h.recent...)
	h.median, h.bound, h.at = median(h.scratch), float64(bound), now
	if math.Abs(h.median) <= h.bound {
		return nil
	}
	return []Evidence{{At: now, Detector: DetectorPPS, Reason: ReasonHoldoverDisagrees, Level: LevelUntrusted,
		Values: map[string]float64{"offset_ns": h.median, "uncertainty_ns": h.bound}}}
}

// Reset forgets the edges and the latest comparison.
func (h *HoldoverCheck) Reset() {
	h.recent, h.lastAt, h.at = h.recent[:0], time.Time{}, time.Time{}
}

// GNSSBound is the largest error GNSS time can have, by the latest
// comparison (|median offset| + the node's bound), if one was made in the
// last holdoverFresh.
func (h *HoldoverCheck) GNSSBound(now time.Time) (time.Duration, bool) {
	if h.at.IsZero() || now.Sub(h.at) > holdoverFresh {
		return 0, false
	}
	return ceilDuration(math.Abs(h.median) + h.bound), true
}
