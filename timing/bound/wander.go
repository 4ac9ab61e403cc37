package bound

import (
	"fmt"
	"math"
	"slices"
)

// The frequency history: the oscillator's free-running frequency over the
// last hours, one least-squares slope of the free-running phase per block
// of wanderBlockS seconds. Its range is the evidence that bounds how far
// the frequency wanders: a random walk, which is what every model of the
// clock assumes, wanders without limit, while a crystal's temperature
// cycle stays within its swing. In the timing bench a TCXO without a
// temperature input kept its true holdover error within 1 ms for 48 h,
// yet left the 1 ms policy after 10.7 h: over 36 h of history its ±5 ppb
// cycle of 4 h is as likely under a walk of 3·10⁻³ ppb²/s as under any
// slower one, and that walk's Δ³ growth set the bound.
const (
	// wanderBlockS is the length of a block (s): long enough that 1 µs
	// of timestamp noise leaves its slope 0.1 ppb uncertain, short
	// against the hours of a temperature cycle.
	wanderBlockS = 1024
	// wanderMaxGapS: a longer gap between samples ends the block under
	// way unfinished (an outage, a holdover), and a block with fewer
	// than half its seconds sampled by twice its length is dropped, so
	// every slope is fitted over samples that fill its block.
	wanderMaxGapS = 60
	// wanderHistoryS is how far back the blocks are kept.
	wanderHistoryS = 48 * 3600
	// wanderMinBlocks is how many blocks the history needs before its
	// range limits anything: 2.3 h, more than half a 4 h cycle.
	wanderMinBlocks = 8
	// wanderMargin multiplies the range: block slopes average the
	// wander within each block, so they understate its extremes, and
	// the next hours may go past the extremes the history saw. For a
	// pure random walk, whose expected range over a span S is 1.6 σ(S),
	// it leaves the bound at 3.4 σ of the walk at S instead of 4
	// (docs/TIMING.md, seventh round).
	wanderMargin = 1.5
)

// wanderBlock is one block's frequency (ppb) and when its samples ran.
type wanderBlock struct {
	startNs, endNs int64
	freqPPB        float64
}

// wander accumulates the frequency history.
type wander struct {
	blocks []wanderBlock
	// The blocks' limit (limit), measured whenever they change: every
	// wanderBlockS seconds, while the bound is read several times a
	// second.
	rangePPB, spanS float64
	limited         bool
	// The block under way: its first sample's time and phase, its
	// last sample's time, and the least-squares sums over t (s since
	// the first sample) and p (ns since its phase).
	n                int
	t0Ns, lastNs     int64
	p0               float64
	st, stt, sp, stp float64
}

// add records the free-running phase (ns) at localNs.
func (w *wander) add(localNs int64, phaseNs float64) {
	if w.n > 0 && (localNs <= w.lastNs || localNs-w.lastNs > wanderMaxGapS*1e9) {
		w.n = 0
	}
	if w.n == 0 {
		w.t0Ns, w.p0 = localNs, phaseNs
		w.st, w.stt, w.sp, w.stp = 0, 0, 0, 0
	}
	t, p := float64(localNs-w.t0Ns)/1e9, phaseNs-w.p0
	w.n++
	w.st, w.stt, w.sp, w.stp = w.st+t, w.stt+t*t, w.sp+p, w.stp+t*p
	w.lastNs = localNs
	if t > 2*wanderBlockS && w.n < wanderBlockS/2 {
		w.n = 0 // too sparse to fit: start afresh
		return
	}
	if t < wanderBlockS || w.n < wanderBlockS/2 {
		return
	}
	n := float64(w.n)
	if d := n*w.stt - w.st*w.st; d > 0 {
		w.blocks = append(w.blocks, wanderBlock{startNs: w.t0Ns, endNs: localNs, freqPPB: (n*w.stp - w.st*w.sp) / d})
	}
	w.n = 0
	i := 0
	for i < len(w.blocks) && localNs-w.blocks[i].startNs > wanderHistoryS*1e9 {
		i++
	}
	w.blocks = w.blocks[i:]
	w.measure()
}

// measure sets the limit from the blocks.
func (w *wander) measure() {
	w.rangePPB, w.spanS, w.limited = 0, 0, len(w.blocks) >= wanderMinBlocks
	if !w.limited {
		return
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, b := range w.blocks {
		lo, hi = math.Min(lo, b.freqPPB), math.Max(hi, b.freqPPB)
	}
	w.rangePPB, w.spanS = wanderMargin*(hi-lo), float64(w.blocks[len(w.blocks)-1].endNs-w.blocks[0].startNs)/1e9
}

// limit returns the range of the blocks' frequencies (ppb) times
// wanderMargin and the span (s) they cover; ok is false with fewer than
// wanderMinBlocks.
func (w *wander) limit() (rangePPB, spanS float64, ok bool) {
	return w.rangePPB, w.spanS, w.limited
}

// rewind forgets the blocks that end after localNs and the block under
// way (Estimator.Restore). The slice is clipped so that the next block
// is appended to a new array: a FrequencyHistory handed out shares the
// old one, whose elements are never written again.
func (w *wander) rewind(localNs int64) {
	i := len(w.blocks)
	for i > 0 && w.blocks[i-1].endNs > localNs {
		i--
	}
	w.blocks, w.n = slices.Clip(w.blocks[:i]), 0
	w.measure()
}

// FrequencyHistory is a snapshot of the estimator's frequency history
// (Estimator.FrequencyHistory), cheap to take at every sample: it shares
// blocks that are never modified.
type FrequencyHistory struct {
	blocks []wanderBlock
	lastNs int64
}

// FrequencyBlock is one block of a kept frequency history: the
// oscillator's free-running frequency (ppb, least squares over the
// block), how long the block ran (s) and how long before the last
// sample it ended (s).
type FrequencyBlock struct {
	AgeS    float64 `json:"age_s"`
	LengthS float64 `json:"length_s"`
	FreqPPB float64 `json:"freq_ppb"`
}

// maxKeptBlocks is the most blocks a kept history may hold: the
// wanderHistoryS a node keeps, with room for blocks cut short by none.
const maxKeptBlocks = wanderHistoryS/wanderBlockS + 1

// Blocks returns the history as FrequencyBlocks, oldest first, for a
// node to keep across a restart; nil when empty.
func (h FrequencyHistory) Blocks() []FrequencyBlock {
	if len(h.blocks) == 0 {
		return nil
	}
	out := make([]FrequencyBlock, len(h.blocks))
	for i, b := range h.blocks {
		out[i] = FrequencyBlock{AgeS: float64(h.lastNs-b.endNs) / 1e9, LengthS: float64(b.endNs-b.startNs) / 1e9, FreqPPB: b.freqPPB}
	}
	return out
}

// ValidateFrequencyBlocks reports why bs cannot be a history the
// estimator kept, if it cannot: too many blocks, a frequency that is not
// finite, a length no block has (wanderBlockS to twice that: a block
// with half its seconds sampled closes at wanderBlockS, a sparser one is
// dropped at twice it), an age past the history kept, or blocks out of
// order or overlapping.
func ValidateFrequencyBlocks(bs []FrequencyBlock) error {
	if len(bs) > maxKeptBlocks {
		return fmt.Errorf("%d frequency blocks, at most %d", len(bs), maxKeptBlocks)
	}
	for i, b := range bs {
		switch {
		case math.IsNaN(b.FreqPPB) || math.IsInf(b.FreqPPB, 0):
			return fmt.Errorf("frequency block %d: frequency %v", i, b.FreqPPB)
		case !(b.LengthS >= wanderBlockS && b.LengthS <= 2*wanderBlockS):
			return fmt.Errorf("frequency block %d: length %v s, want %d to %d", i, b.LengthS, wanderBlockS, 2*wanderBlockS)
		case !(b.AgeS >= 0 && b.AgeS+b.LengthS <= wanderHistoryS):
			return fmt.Errorf("frequency block %d: ended %v s before the last sample and ran %v s, want within %d s", i, b.AgeS, b.LengthS, wanderHistoryS)
		case i > 0 && b.AgeS+b.LengthS > bs[i-1].AgeS:
			return fmt.Errorf("frequency block %d overlaps or precedes block %d", i, i-1)
		}
	}
	return nil
}

// seed places bs (validated) so that the newest ends at localNs.
func (w *wander) seed(bs []FrequencyBlock, localNs int64) {
	w.blocks = w.blocks[:0]
	for _, b := range bs {
		end := localNs - int64(b.AgeS*1e9)
		w.blocks = append(w.blocks, wanderBlock{startNs: end - int64(b.LengthS*1e9), endNs: end, freqPPB: b.FreqPPB})
	}
	w.measure()
}

// walkLimit limits a model's random walk by the frequency history: while
// the horizon is within the history's span, the walk's frequency departs
// by no more than capVar (ppb², the range as K standard deviations);
// beyond the span it walks on from there. The zero value limits nothing.
type walkLimit struct {
	capVar, spanS float64
}

// walkVar returns the phase variance (ns²) a random walk of qrw ppb²/s
// adds dt seconds ahead, with its frequency frozen once its variance
// reaches l.capVar (at h = capVar/qrw, not before LongHorizon) while dt
// is within l.spanS, and walking again past the span:
// qrw·(∫∫ min(s, t, h) ds dt over [0, dt]² + (dt − span)³/3). Without a
// limit, or when the walk would not reach the cap within the span, it
// is qrw·dt³/3.
func (l walkLimit) walkVar(qrw, dt float64) float64 {
	plain := qrw * dt * dt * dt / 3
	if l.spanS <= 0 || qrw <= 0 {
		return plain
	}
	// Never before LongHorizon: no locked second's bound moves.
	h := math.Max(l.capVar/qrw, LongHorizon)
	if h >= l.spanS || dt <= h {
		return plain
	}
	v := h*h*h/3 + h*h*(dt-h) + h*(dt-h)*(dt-h)
	if dt > l.spanS {
		r := dt - l.spanS
		v += r * r * r / 3
	}
	return qrw * v
}
