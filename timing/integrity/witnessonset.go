package integrity

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// WitnessHistory is how long the callers of CheckWitnesses keep each
// witness's measurements: a quorum that disagrees dates the drag it
// caught from them (onset_s), and the discipline can hold over from a
// state up to about that old (timing keeps 4.6 h of checkpoints).
const WitnessHistory = 4 * time.Hour

// witnessSpacing is the closest two kept measurements of one witness
// may be, but for its latest: a node polling its witnesses every second
// would otherwise keep tens of thousands, and dating a drag costs the
// square of the history's length. At the default poll of 64 s nothing is
// thinned.
const witnessSpacing = 16 * time.Second

// KeepWitnessHistory appends m to hist and drops what is older than
// WitnessHistory at now, reusing hist's array. A witness's measurements
// are kept at least witnessSpacing apart, but for its latest, which the
// next one replaces while it is closer than that to the one before it.
func KeepWitnessHistory(hist []Measurement, now time.Time, m Measurement) []Measurement {
	last, prev := -1, -1 // m.Witness's latest two kept, by index
	for i := len(hist) - 1; i >= 0 && prev < 0; i-- {
		if hist[i].Witness == m.Witness {
			if last < 0 {
				last = i
			} else {
				prev = i
			}
		}
	}
	// The latest is kept for good once it is witnessSpacing past the one
	// before it; until then the next measurement takes its place.
	if prev >= 0 && hist[last].At.Sub(hist[prev].At) < witnessSpacing {
		hist = append(hist[:last], hist[last+1:]...)
	}
	hist = append(hist, m)
	i := 0
	for i < len(hist) && now.Sub(hist[i].At) > WitnessHistory {
		i++
	}
	if i == 0 {
		return hist
	}
	return append(hist[:0], hist[i:]...)
}

// Dating a drag the witnesses caught.
const (
	// onsetMinPoints is the fewest measurements of the agreeing witnesses
	// that a drag is dated from, and the fewest on either side of an
	// onset.
	onsetMinPoints = 3
	// onsetMargin widens the dated onset: a checkpoint from before the
	// drag costs a little more holdover bound, one from after it carries
	// the drag's frequency.
	onsetMargin = 5 * time.Minute
	// hingeGain is how much better than a line a hinge must fit (in
	// units of the residual noise variance) to say where a drag began.
	hingeGain = 10
)

// witnessOnset dates the start of a drag that a quorum of witnesses has
// caught: how many seconds before now the node's clock began to move
// away from them. The witnesses are the time GNSS cannot move, so the
// offsets they measured (witness − node) are flat, each at its own path
// bias, until the onset and change at the drag's rate after it. The fit
// is that hinge: one rate for all witnesses, one level each, the onset
// at the measurement that leaves the least squared residual. A drag
// older than the history is dated by extending its line back to the
// witnesses' mean level. ok is false when the measurements are too few,
// or their drift runs the other way from the disagreement (sign: the
// sign of the quorum's offset now).
func witnessOnset(now time.Time, hist []Measurement, in map[string]bool, sign float64) (ageS float64, ok bool) {
	idx := map[string]int{}
	var ps []fitPoint // t: seconds before now (negative); y: offset, ns
	for _, m := range hist {
		if !in[m.Witness] || m.At.After(now) || now.Sub(m.At) > WitnessHistory {
			continue
		}
		i, seen := idx[m.Witness]
		if !seen {
			i = len(idx)
			idx[m.Witness] = i
		}
		ps = append(ps, fitPoint{t: m.At.Sub(now).Seconds(), y: float64(m.Offset), g: i})
	}
	if len(ps) < 2*onsetMinPoints {
		return 0, false
	}
	f := newSlopeFitter(len(idx))
	slices.SortFunc(ps, func(a, b fitPoint) int { return cmp.Compare(a.t, b.t) })
	first := ps[0].t
	bestT, bestRate, bestSSE := first, 0.0, math.Inf(1)
	hingeScan(ps, len(idx), func(i int, rate, sse, sxx float64) {
		if before, after := i+1, len(ps)-i-1; after < onsetMinPoints || (before < onsetMinPoints && i > 0) {
			return
		}
		if sxx > 0 && sse < bestSSE {
			bestT, bestRate, bestSSE = ps[i].t, rate, sse
		}
	})
	// A hinge has one parameter more than the line through the whole
	// history: it must earn it (its gain in residual at least
	// hingeGain times the noise variance it leaves), or the drag is
	// older than the history.
	if lineRate, lineSSE, _ := f.fit(ps, first); bestT != first && !math.IsInf(bestSSE, 1) {
		dof := float64(len(ps) - len(idx) - 2)
		if dof <= 0 || lineSSE-bestSSE < hingeGain*bestSSE/dof {
			bestT, bestRate, bestSSE = first, lineRate, lineSSE
		}
	}
	if math.IsInf(bestSSE, 1) || bestRate*sign <= 0 {
		return 0, false
	}
	onset := bestT
	if bestT == first {
		// No flat stretch in the history: the line crosses the
		// witnesses' mean level before it. level is the line's mean at
		// its mean x = at; 0 is the mean bias. (f holds the line's fit,
		// made above.)
		at, level := f.means()
		onset = first - (level-bestRate*at)/bestRate
		onset = math.Min(onset, first)
		// The line's slope and the witnesses' mean bias are known only
		// so well: the further back, the wider the margin.
		onset -= (first - onset) / 4
	}
	return -onset + onsetMargin.Seconds(), true
}

// hingeScan calls visit with what slopeFitter.fit(ps, ps[i].t) returns,
// for every i, in O(len(ps)·groups) rather than fit's O(len(ps)) each:
// the sums over the points after the hinge are kept as suffix sums of t,
// t², t·y and y per group, from which the centred sums follow. ps must be
// sorted by t. Times are taken from ps[0].t, which keeps the sums' terms
// small.
func hingeScan(ps []fitPoint, groups int, visit func(i int, rate, sse, sxx float64)) {
	type sums struct{ n, y, yy, k, t, tt, ty, ya float64 }
	g := make([]sums, groups)
	base := ps[0].t
	for _, p := range ps {
		s := &g[p.g]
		t := p.t - base
		s.n++
		s.y += p.y
		s.yy += p.y * p.y
		s.k++
		s.t += t
		s.tt += t * t
		s.ty += t * p.y
		s.ya += p.y
	}
	var syy float64
	for _, s := range g {
		if s.n > 0 {
			syy += s.yy - s.y*s.y/s.n
		}
	}
	j := 0 // ps[j:] are the points after the hinge (x = t − t0 > 0)
	for i, p := range ps {
		t0 := p.t - base
		for j < len(ps) && ps[j].t-base <= t0 {
			s := &g[ps[j].g]
			t := ps[j].t - base
			s.k--
			s.t -= t
			s.tt -= t * t
			s.ty -= t * ps[j].y
			s.ya -= ps[j].y
			j++
		}
		var sxx, sxy float64
		for _, s := range g {
			if s.n == 0 {
				continue
			}
			sx := s.t - s.k*t0
			sxx += s.tt - 2*t0*s.t + s.k*t0*t0 - sx*sx/s.n
			sxy += s.ty - t0*s.ya - sx*s.y/s.n
		}
		if sxx <= 0 {
			visit(i, 0, math.Inf(1), 0)
			continue
		}
		rate := sxy / sxx
		visit(i, rate, math.Max(0, syy-rate*sxy), sxx)
	}
}

// fitPoint is one measurement for slopeFitter: its time (s), value and
// group.
type fitPoint struct {
	t, y float64
	g    int
}

// slopeFitter fits y = level_g + rate·x by least squares: one rate for all
// points, one level per group, x the time since t0 (0 before it: a hinge
// at t0). Its buffers are reused from fit to fit.
type slopeFitter struct{ cnt, sx, sy []float64 }

func newSlopeFitter(groups int) *slopeFitter {
	return &slopeFitter{cnt: make([]float64, groups), sx: make([]float64, groups), sy: make([]float64, groups)}
}

// fit returns the rate, the residual sum of squares and the sum of
// squared x deviations from their group means (0: x does not vary, and
// the rate means nothing).
func (f *slopeFitter) fit(ps []fitPoint, t0 float64) (rate, sse, sxx float64) {
	clear(f.cnt)
	clear(f.sx)
	clear(f.sy)
	for _, p := range ps {
		f.cnt[p.g]++
		f.sx[p.g] += math.Max(0, p.t-t0)
		f.sy[p.g] += p.y
	}
	var sxy float64
	for _, p := range ps {
		x := math.Max(0, p.t-t0) - f.sx[p.g]/f.cnt[p.g]
		sxy += x * (p.y - f.sy[p.g]/f.cnt[p.g])
		sxx += x * x
	}
	if sxx == 0 {
		return 0, math.Inf(1), 0
	}
	rate = sxy / sxx
	for _, p := range ps {
		x := math.Max(0, p.t-t0) - f.sx[p.g]/f.cnt[p.g]
		r := p.y - f.sy[p.g]/f.cnt[p.g] - rate*x
		sse += r * r
	}
	return rate, sse, sxx
}

// means returns, after a fit, the groups' mean x and mean y, averaged
// over the groups that had points.
func (f *slopeFitter) means() (x, y float64) {
	n := 0.0
	for g, c := range f.cnt {
		if c > 0 {
			x += f.sx[g] / c
			y += f.sy[g] / c
			n++
		}
	}
	return x / n, y / n
}
