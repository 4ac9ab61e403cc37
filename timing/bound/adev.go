package bound

import "math"

// ADEV returns the measured Allan deviation of the clock's free-running
// phase at τ seconds (dimensionless, e.g. 1e-9 for 1 ppb), interpolated
// log-log between octaves and extrapolated with the fitted noise model
// outside them. It includes the timestamp noise, which dominates at short τ.
// It returns 0 before anything is measured.
func (e *Estimator) ADEV(tau float64) float64 {
	if tau <= 0 {
		return 0
	}
	var pts [Octaves]float64
	for m := range Octaves {
		if v, ok := e.allan.AVAR(m); ok {
			pts[m] = v
		} else if e.fitted {
			pts[m] = e.noise.AVAR(float64(int64(1) << m))
		}
	}
	if pts[0] == 0 {
		return 0
	}
	return math.Sqrt(interpOctaves(pts[:], tau, Octaves-1)) * 1e-9
}

// OscillatorADEV is ADEV with the timestamp (white phase) noise taken out:
// the oscillator's own stability, which drives holdover error growth.
func (e *Estimator) OscillatorADEV(tau float64) float64 {
	return math.Sqrt(e.oscAVAR(tau)) * 1e-9
}

// oscAVAR returns the oscillator's Allan variance (ppb²) at τ: per octave
// the larger of the fitted model without its white-phase term and the
// measured variance minus that term; beyond the last measured octave it is
// extrapolated with the observed slope, at least that of random-walk
// frequency noise (σ² ∝ τ) and at most that of a drift (σ² ∝ τ²).
func (e *Estimator) oscAVAR(tau float64) float64 {
	if !e.fitted {
		return e.cfg.PriorSigmaY * e.cfg.PriorSigmaY
	}
	var pts [Octaves]float64
	last := -1
	for m := range Octaves {
		t := float64(int64(1) << m)
		model := e.noise.Qwf/t + e.noise.Qrw*t/3
		pts[m] = model
		if v, ok := e.allan.AVAR(m); ok {
			pts[m] = math.Max(model, v-3*e.noise.R/(t*t))
			last = m
		}
	}
	if last < 0 {
		return e.cfg.PriorSigmaY * e.cfg.PriorSigmaY
	}
	return interpOctaves(pts[:last+1], tau, last)
}

// interpOctaves interpolates pts (values at τ = 2^m) log-log at tau; below
// τ = 1 it holds the first value; beyond the last index it extrapolates with
// the slope of the last two points clamped to [1, 2].
func interpOctaves(pts []float64, tau float64, last int) float64 {
	pts = pts[:last+1]
	if tau <= 1 || len(pts) == 1 && tau <= 1 {
		return pts[0]
	}
	lt := math.Log2(tau)
	n := len(pts) - 1
	if lt >= float64(n) {
		slope := 1.0
		if n >= 1 && pts[n] > 0 && pts[n-1] > 0 {
			slope = math.Min(2, math.Max(1, math.Log2(pts[n]/pts[n-1])))
		}
		return pts[n] * math.Pow(2, slope*(lt-float64(n)))
	}
	m := int(lt)
	f := lt - float64(m)
	a, b := pts[m], pts[m+1]
	if a <= 0 || b <= 0 {
		return a + f*(b-a)
	}
	return math.Exp((1-f)*math.Log(a) + f*math.Log(b))
}
