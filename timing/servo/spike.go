package servo

import (
	"math"
	"slices"
)

// spikeFilter rejects late timestamps: PPS latency only ever delays an edge,
// so a spike shows as an offset far above the recent ones. Early outliers
// are never rejected, they are real.
type spikeFilter struct {
	on     bool
	window []float64 // ring of recent accepted offsets
	next   int
	full   bool
	sigmas float64
	floor  float64
	maxRun int
	run    int
	buf    []float64
}

func newSpikeFilter(cfg Config) spikeFilter {
	n := max(cfg.SpikeWindow, 5)
	return spikeFilter{
		on:     cfg.SpikeFilter,
		window: make([]float64, n),
		buf:    make([]float64, n),
		sigmas: cfg.SpikeSigmas,
		floor:  cfg.SpikeFloorNs,
		maxRun: cfg.SpikeMaxRun,
	}
}

func (f *spikeFilter) reset() { f.next, f.full, f.run = 0, false, 0 }

func (f *spikeFilter) accept(off float64) {
	f.window[f.next] = off
	f.next++
	if f.next == len(f.window) {
		f.next, f.full = 0, true
	}
	f.run = 0
}

// isSpike reports whether off should be discarded. It only judges once the
// window is full, and gives up after maxRun rejections in a row.
func (f *spikeFilter) isSpike(off float64) bool {
	if !f.on || !f.full {
		return false
	}
	if f.maxRun > 0 && f.run >= f.maxRun {
		f.reset()
		return false
	}
	copy(f.buf, f.window)
	slices.Sort(f.buf)
	med := f.buf[len(f.buf)/2]
	for i, v := range f.buf {
		f.buf[i] = math.Abs(v - med)
	}
	slices.Sort(f.buf)
	mad := 1.4826 * f.buf[len(f.buf)/2]
	if off-med > math.Max(f.sigmas*mad, f.floor) {
		f.run++
		return true
	}
	return false
}
