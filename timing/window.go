package timing

import "math"

// window keeps the last n values of a series for jitter and wander figures.
type window struct {
	v    []float64
	next int
	full bool
}

func newWindow(n int) window { return window{v: make([]float64, n)} }

func (w *window) add(x float64) {
	w.v[w.next] = x
	w.next = (w.next + 1) % len(w.v)
	if w.next == 0 {
		w.full = true
	}
}

func (w *window) reset() { w.next, w.full = 0, false }

// values returns the samples oldest first.
func (w *window) values() []float64 {
	if !w.full {
		return w.v[:w.next]
	}
	return append(append([]float64(nil), w.v[w.next:]...), w.v[:w.next]...)
}

func (w *window) rms() float64 {
	vs := w.values()
	if len(vs) == 0 {
		return 0
	}
	var s float64
	for _, x := range vs {
		s += x * x
	}
	return math.Sqrt(s / float64(len(vs)))
}

func (w *window) std() float64 {
	vs := w.values()
	if len(vs) < 2 {
		return 0
	}
	var m float64
	for _, x := range vs {
		m += x
	}
	m /= float64(len(vs))
	var s float64
	for _, x := range vs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(vs)-1))
}

// slope is the least-squares trend per sample of the series.
func (w *window) slope() float64 {
	vs := w.values()
	n := float64(len(vs))
	if n < 3 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i, y := range vs {
		x := float64(i)
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}
