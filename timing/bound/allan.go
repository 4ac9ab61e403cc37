package bound

import (
	"fmt"
	"math"
)

// Octaves is the number of averaging times the Allan estimator tracks:
// τ = 1, 2, 4, … 2^(Octaves−1) seconds.
const Octaves = 12

// Allan is an online overlapping Allan variance estimator over octave
// averaging times, fed with phase samples (ns) on a one-second grid. Seconds
// without a sample are skipped: a term is only counted when its three phase
// points all exist. Old terms are down-weighted by halving the sums once a
// term count reaches a cap, which keeps roughly the last few hours.
type Allan struct {
	phase []float64
	index []int64 // second index stored in each ring slot (empty: MinInt64)
	sum   [Octaves]float64
	n     [Octaves]float64
}

// maxTerms is the term count at which the sums are halved.
const maxTerms = 20000

// NewAllan returns an empty estimator.
func NewAllan() *Allan {
	size := 2<<(Octaves-1) + 1
	a := &Allan{phase: make([]float64, size), index: make([]int64, size)}
	a.Reset()
	return a
}

// Reset forgets all samples and statistics.
func (a *Allan) Reset() {
	for i := range a.index {
		a.index[i] = math.MinInt64
	}
	a.sum, a.n = [Octaves]float64{}, [Octaves]float64{}
}

// Stability is what an Allan accumulator has measured of the oscillator
// and the timestamps: per octave m (τ = 2^m s), the sum of its terms
// ½(Δ²x/τ)² (ppb²) and their count, both halved together as the
// accumulator ages. It is a checkpoint's, and what a node keeps across
// restarts (Estimator.SeedStability).
type Stability struct {
	Sum, N [Octaves]float64
}

// Validate reports the first octave whose sums no accumulator could hold:
// not finite, negative, a count above the accumulator's cap, or a sum
// without terms.
func (s Stability) Validate() error {
	for m := range Octaves {
		sum, n := s.Sum[m], s.N[m]
		switch {
		case math.IsNaN(sum) || math.IsInf(sum, 0) || math.IsNaN(n) || math.IsInf(n, 0):
			return fmt.Errorf("octave %d (τ = %d s): sum %v over %v terms is not finite", m, 1<<m, sum, n)
		case sum < 0 || n < 0:
			return fmt.Errorf("octave %d (τ = %d s): negative sum %v or count %v", m, 1<<m, sum, n)
		case n >= maxTerms:
			return fmt.Errorf("octave %d (τ = %d s): %v terms, more than the accumulator keeps (%d)", m, 1<<m, n, maxTerms)
		case n == 0 && sum != 0:
			return fmt.Errorf("octave %d (τ = %d s): sum %v without terms", m, 1<<m, sum)
		}
	}
	return nil
}

// Measured reports whether the sums back at least one octave's variance
// (Allan.AVAR's rule).
func (s Stability) Measured() bool {
	a := Allan{sum: s.Sum, n: s.N}
	for m := range Octaves {
		if _, ok := a.AVAR(m); ok {
			return true
		}
	}
	return false
}

func (a *Allan) stats() Stability { return Stability{a.sum, a.n} }

// rewind returns the sums to st and forgets the phases after second sec,
// so that no later term spans what was taken back.
func (a *Allan) rewind(st Stability, sec int64) {
	a.sum, a.n = st.Sum, st.N
	for i, s := range a.index {
		if s > sec {
			a.index[i] = math.MinInt64
		}
	}
}

// Add records the phase (ns) observed at whole second sec (any origin).
func (a *Allan) Add(sec int64, phaseNs float64) {
	size := int64(len(a.phase))
	slot := func(s int64) int64 { return ((s % size) + size) % size }
	a.phase[slot(sec)], a.index[slot(sec)] = phaseNs, sec
	for m := range Octaves {
		tau := int64(1) << m
		i1, i2 := slot(sec-tau), slot(sec-2*tau)
		if a.index[i1] != sec-tau || a.index[i2] != sec-2*tau {
			continue
		}
		d := (phaseNs - 2*a.phase[i1] + a.phase[i2]) / float64(tau)
		a.sum[m] += d * d / 2
		a.n[m]++
		if a.n[m] >= maxTerms {
			a.sum[m] /= 2
			a.n[m] /= 2
		}
	}
}

// AVAR returns the Allan variance (ppb²) at octave m and whether enough terms
// (about eight independent ones) back it.
func (a *Allan) AVAR(m int) (float64, bool) {
	if m < 0 || m >= Octaves {
		return 0, false
	}
	tau := float64(int64(1) << m)
	if a.n[m] < 4*tau+16 {
		return 0, false
	}
	return a.sum[m] / a.n[m], true
}

// Noise is the power-law noise model σ²(τ) = 3R/τ² + Qwf/τ + Qrw·τ/3:
// white phase noise of variance R (ns²) per sample, white frequency noise
// Qwf (ns²/s) and random-walk frequency noise Qrw (ppb²/s).
type Noise struct {
	R, Qwf, Qrw float64
}

// AVAR returns the model's Allan variance at τ seconds.
func (n Noise) AVAR(tau float64) float64 {
	return 3*n.R/(tau*tau) + n.Qwf/tau + n.Qrw*tau/3
}

// Fit fits the noise model to the octaves that are backed by enough terms,
// by non-negative least squares on relative errors. ok is false with fewer
// than two usable octaves.
func (a *Allan) Fit() (Noise, bool) {
	var rows [][3]float64
	for m := range Octaves {
		v, ok := a.AVAR(m)
		if !ok || v <= 0 {
			continue
		}
		t := float64(int64(1) << m)
		rows = append(rows, [3]float64{3 / (t * t) / v, 1 / t / v, t / 3 / v})
	}
	if len(rows) < 2 {
		return Noise{}, false
	}
	best, bestErr := [3]float64{}, math.Inf(1)
	for mask := 1; mask < 8; mask++ {
		c, ok := solveSubset(rows, mask)
		if !ok {
			continue
		}
		e := 0.0
		for _, r := range rows {
			d := r[0]*c[0] + r[1]*c[1] + r[2]*c[2] - 1
			e += d * d
		}
		if e < bestErr {
			best, bestErr = c, e
		}
	}
	if math.IsInf(bestErr, 1) {
		return Noise{}, false
	}
	return Noise{R: best[0], Qwf: best[1], Qrw: best[2]}, true
}

// solveSubset solves the least-squares problem rows·c ≈ 1 restricted to the
// coefficients selected by mask, and reports whether all are non-negative.
func solveSubset(rows [][3]float64, mask int) ([3]float64, bool) {
	var idx []int
	for j := range 3 {
		if mask&(1<<j) != 0 {
			idx = append(idx, j)
		}
	}
	k := len(idx)
	var ata [3][3]float64
	var atb [3]float64
	for _, r := range rows {
		for i := range k {
			atb[i] += r[idx[i]]
			for j := range k {
				ata[i][j] += r[idx[i]] * r[idx[j]]
			}
		}
	}
	sol, ok := gauss(ata, atb, k)
	var c [3]float64
	if !ok {
		return c, false
	}
	for i := range k {
		if sol[i] < 0 {
			return c, false
		}
		c[idx[i]] = sol[i]
	}
	return c, true
}

// gauss solves the k×k system a·x = b by elimination with partial pivoting.
func gauss(a [3][3]float64, b [3]float64, k int) ([3]float64, bool) {
	for col := range k {
		p := col
		for r := col + 1; r < k; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[p][col]) {
				p = r
			}
		}
		if math.Abs(a[p][col]) < 1e-300 {
			return b, false
		}
		a[col], a[p] = a[p], a[col]
		b[col], b[p] = b[p], b[col]
		for r := range k {
			if r == col {
				continue
			}
			f := a[r][col] / a[col][col]
			for c := col; c < k; c++ {
				a[r][c] -= f * a[col][c]
			}
			b[r] -= f * b[col]
		}
	}
	for i := range k {
		b[i] /= a[i][i]
	}
	return b, true
}
