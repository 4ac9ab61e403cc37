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

// Departure is how far the node's clock has moved against the
// witnesses over their history (WitnessDeparture).
type Departure struct {
	// At is when it was measured.
	At time.Time
	// Move is the node's clock minus true time now, minus the same at the
	// start of the history (positive: the node moved ahead), as the
	// median witness measured it.
	Move time.Duration
	// StdErr is the standard error of Move: the largest of the
	// witnesses' (their jitter averaged over the two windows).
	StdErr time.Duration
	// Rate is the median witness's mean rate of Move between the windows
	// (ns/s), for extending it to a later time.
	Rate float64
	// Witnesses is how many witnesses had history enough to take part.
	Witnesses int
}

// Floor returns the floor under the node's time error that d measured,
// |Move| plus three standard errors; ok is false when Move is within
// three standard errors of none (a node that took in nothing must not
// keep a residual for it).
func (d Departure) Floor() (time.Duration, bool) {
	m := d.Move.Abs()
	if m <= 3*d.StdErr {
		return 0, false
	}
	return m + 3*d.StdErr, true
}

// WitnessDeparture measures how far the node's clock has moved against
// the witnesses over their history (hist as KeepWitnessHistory keeps it):
// the base of a floor under the time error the node took in while it
// followed GNSS, whatever the local checks measured (Departure.Floor).
// Per witness, the mean offset of its last departWindow minus that of
// its first, extended to now at the mean rate between them; the median
// over the witnesses, and the standard error of the largest scatter. The
// path biases cancel in the difference, so it resolves far finer than
// one witness's uncertainty: tens of µs against their hundreds. It
// measures the move from the start of the history, where the node is
// assumed to have been within its own bound (trusted and locked,
// microseconds); a move that began before the history is only partly
// seen, and a change of the node's own path asymmetry (its uplink) moves
// every witness alike and reads as a move. ok is false with fewer than
// two witnesses whose history spans two windows with at least three
// measurements in each.
func WitnessDeparture(now time.Time, hist []Measurement) (Departure, bool) {
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
	// Per witness, in the node's terms: the offsets are witness − node,
	// so the node's move is their change negated.
	type dep struct{ ns, rate, se float64 }
	var deps []dep
	for _, a := range per {
		if now.Sub(a.first) < 2*departWindow {
			continue
		}
		// Each window's offsets (ns) and times (seconds before now).
		var eY, eT, lY, lT []float64
		for _, m := range a.ms {
			switch {
			case m.At.Sub(a.first) <= departWindow:
				eY, eT = append(eY, float64(m.Offset)), append(eT, now.Sub(m.At).Seconds())
			case now.Sub(m.At) <= departWindow:
				lY, lT = append(lY, float64(m.Offset)), append(lT, now.Sub(m.At).Seconds())
			}
		}
		ne, nl := float64(len(eY)), float64(len(lY))
		if ne < onsetMinPoints || nl < onsetMinPoints {
			continue
		}
		// The late window's mean time is nearer now.
		te, _ := meanSD(eT)
		tl, _ := meanSD(lT)
		if tl >= te {
			continue
		}
		me, sdE := meanSD(eY)
		ml, sdL := meanSD(lY)
		d := me - ml
		r := d / (te - tl)
		// The pooled scatter of both windows about their means.
		sd := math.Sqrt((ne*sdE*sdE + nl*sdL*sdL) / (ne + nl - 2))
		se := sd * math.Sqrt(1/ne+1/nl)
		// Extended to now, the move is d·k, and so is its error: on a
		// short history (20 min) k is 1.5, on 4 h 1.02.
		k := te / (te - tl)
		deps = append(deps, dep{ns: d * k, rate: r, se: se * k})
	}
	if len(deps) < 2 {
		return Departure{}, false
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
	return Departure{At: now, Move: time.Duration(math.Round(mid.ns)), StdErr: time.Duration(math.Ceil(se)),
		Rate: mid.rate, Witnesses: len(deps)}, true
}
