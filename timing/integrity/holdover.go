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

// How the check measures GNSS's drift against the held-over clock: one
// comparison a minute, fitted over the last half hour, once it spans ten
// minutes.
const (
	driftEvery   = time.Minute
	driftWindow  = 30 * time.Minute
	driftMinSpan = 10 * time.Minute
)

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
// which it cannot see. For the same reason the check measures how fast
// GNSS moves against the held-over clock (Drift): a GNSS still dragged
// when the node follows it again goes on moving at about that rate, and
// the policy widens by it as time passes.
type HoldoverCheck struct {
	recent  []float64 // the last edges' offsets, oldest first
	scratch []float64 // recent, sorted for the median
	lastAt  time.Time
	// The latest comparison: the median offset and the bound, and when.
	median, bound float64
	at            time.Time
	// series is one comparison per driftEvery over the last driftWindow,
	// oldest first, for Drift.
	series []comparison
	points []fitPoint   // series as Drift fits it, reused
	fitter *slopeFitter // Drift's, made on first use
}

// comparison is one median offset and the bound it was judged against.
type comparison struct {
	at            time.Time
	median, bound float64
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
	if n := len(h.series); n == 0 || now.Sub(h.series[n-1].at) >= driftEvery {
		i := 0
		for i < n && now.Sub(h.series[i].at) > driftWindow {
			i++
		}
		h.series = append(h.series[:0], h.series[i:]...)
		h.series = append(h.series, comparison{now, h.median, h.bound})
	}
	if math.Abs(h.median) <= h.bound {
		return nil
	}
	return []Evidence{{At: now, Detector: DetectorPPS, Reason: ReasonHoldoverDisagrees, Level: LevelUntrusted,
		Values: map[string]float64{"offset_ns": h.median, "uncertainty_ns": h.bound}}}
}

// Reset forgets the edges and the latest comparison.
func (h *HoldoverCheck) Reset() {
	h.recent, h.lastAt, h.at = h.recent[:0], time.Time{}, time.Time{}
	h.series = h.series[:0]
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

// Drift is how fast GNSS time may move away from true time (ns/s) by the
// comparisons of the last driftWindow, if they span driftMinSpan and the
// latest is fresh: the slope of the median offsets, three standard errors
// wider, plus how fast the node's own bound grew meanwhile (the
// held-over clock's share of the slope is within that). A node that
// follows GNSS again may be that much further off each second.
func (h *HoldoverCheck) Drift(now time.Time) (float64, bool) {
	n := len(h.series)
	if h.at.IsZero() || now.Sub(h.at) > holdoverFresh || n < 3 ||
		h.series[n-1].at.Sub(h.series[0].at) < driftMinSpan {
		return 0, false
	}
	first, last := h.series[0], h.series[n-1]
	h.points = h.points[:0]
	for _, c := range h.series {
		h.points = append(h.points, fitPoint{t: c.at.Sub(first.at).Seconds(), y: c.median})
	}
	if h.fitter == nil {
		h.fitter = newSlopeFitter(1)
	}
	slope, sse, sxx := h.fitter.fit(h.points, 0)
	se := math.Sqrt(sse / float64(n-2) / sxx)
	growth := math.Max(0, (last.bound-first.bound)/last.at.Sub(first.at).Seconds())
	return math.Abs(slope) + 3*se + growth, true
}
