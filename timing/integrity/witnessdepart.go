package integrity

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// departWindow is how much of each end of a witness's history is averaged
// by WitnessDeparture: long enough to average about ten polls of 64 s,
// a third of the witnesses' jitter, short enough that the late end lags a
// drag by only a few minutes of its rate.
const departWindow = 10 * time.Minute

// WitnessDeparture returns how far, at most, the node's clock has moved
// against the witnesses over their history (hist as KeepWitnessHistory
// keeps it): a floor under the time error the node took in while it
// followed GNSS, whatever the local checks measured. Per witness, the
// mean offset of its last departWindow minus that of its first, extended
// to now at the mean rate between them; the median over the witnesses,
// plus three standard errors of the largest scatter. The path biases
// cancel in the difference, so the floor resolves far finer than one
// witness's uncertainty: tens of µs against their hundreds. It measures the
// move from the start of the history, where the node is assumed to have
// been within its own bound (trusted and locked, microseconds); a move
// that began before the history is only partly seen.
//
// rate is the median witness's mean rate (ns/s, signed as the offsets),
// for extending the floor to a later time. ok is false when the move is
// within three standard errors of none (a node that took in nothing must
// not keep a residual for it), or with fewer than two witnesses whose
// history spans two windows with at least three measurements in each.
func WitnessDeparture(now time.Time, hist []Measurement) (floor time.Duration, rate float64, ok bool) {
	type acc struct {
		first time.Time
		ms    []Measurement
	}
	per := map[string]*acc{}
	for _, m := range hist {
		if m.At.After(now) || now.Sub(m.At) > WitnessHistory {
			continue
		}
		a := per[m.Witness]
		if a == nil {
			a = &acc{first: m.At}
			per[m.Witness] = a
		}
		if m.At.Before(a.first) {
			a.first = m.At
		}
		a.ms = append(a.ms, m)
	}
	type dep struct{ ns, rate, se float64 }
	var deps []dep
	for _, a := range per {
		if now.Sub(a.first) < 2*departWindow {
			continue
		}
		var early, late offsetWindow
		for _, m := range a.ms {
			switch {
			case m.At.Sub(a.first) <= departWindow:
				early.add(m, now)
			case now.Sub(m.At) <= departWindow:
				late.add(m, now)
			}
		}
		if early.n < onsetMinPoints || late.n < onsetMinPoints {
			continue
		}
		// Seconds before now of each window's mean time; the late one
		// is nearer.
		te, tl := early.meanT(), late.meanT()
		if tl >= te {
			continue
		}
		d := late.mean() - early.mean()
		r := d / (te - tl)
		ss := early.sumSq() + late.sumSq()
		dof := float64(early.n + late.n - 2)
		se := math.Sqrt(ss/dof) * math.Sqrt(1/float64(early.n)+1/float64(late.n))
		deps = append(deps, dep{ns: d + r*tl, rate: r, se: se})
	}
	if len(deps) < 2 {
		return 0, 0, false
	}
	slices.SortFunc(deps, func(a, b dep) int { return cmp.Compare(a.ns, b.ns) })
	mid := deps[len(deps)/2]
	if len(deps)%2 == 0 {
		lo := deps[len(deps)/2-1]
		mid = dep{ns: (lo.ns + mid.ns) / 2, rate: (lo.rate + mid.rate) / 2}
	}
	var se float64
	for _, d := range deps {
		se = math.Max(se, d.se)
	}
	if math.Abs(mid.ns) <= 3*se {
		return 0, 0, false // no move the witnesses can resolve
	}
	return time.Duration(math.Ceil(math.Abs(mid.ns) + 3*se)), mid.rate, true
}

// offsetWindow accumulates one end of a witness's history: offsets (ns) and
// times (seconds before now).
type offsetWindow struct {
	n           int
	st, sy, syy float64
	firstY      float64
}

func (w *offsetWindow) add(m Measurement, now time.Time) {
	y := float64(m.Offset)
	if w.n == 0 {
		w.firstY = y // shift for a stable variance: the offsets sit on a bias
	}
	y -= w.firstY
	w.n++
	w.st += now.Sub(m.At).Seconds()
	w.sy += y
	w.syy += y * y
}

func (w *offsetWindow) meanT() float64 { return w.st / float64(w.n) }
func (w *offsetWindow) mean() float64  { return w.firstY + w.sy/float64(w.n) }
func (w *offsetWindow) sumSq() float64 { return math.Max(0, w.syy-w.sy*w.sy/float64(w.n)) }
