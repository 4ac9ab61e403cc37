package integrity

import "math"

// PowerLaw is the oscillator and timestamp noise model the PPS detector
// judges against, in the notation of timing/bound (bound.Noise): the Allan
// variance σ²_y(τ) = 3R/τ² + Qwf/τ + Qrw·τ/3 (ppb²), plus a deterministic
// frequency drift the oscillator may show without anything being wrong
// (temperature, ageing). The daemon starts from the oscillator's
// configured class and calibrates its short-term terms with the bound
// estimator's fit (Calibrate).
type PowerLaw struct {
	// R is the white phase (timestamp) noise variance per pulse, ns².
	R float64 `json:"r_ns2"`
	// Qwf is the white frequency noise, ns²/s.
	Qwf float64 `json:"qwf_ns2_per_s"`
	// Qrw is the random-walk frequency noise, ppb²/s.
	Qrw float64 `json:"qrw_ppb2_per_s"`
	// DriftPPBPerS is the largest rate of change of frequency that is
	// normal for this oscillator (ppb/s), e.g. 2π·A/P for a temperature
	// swing of amplitude A ppb and period P s.
	DriftPPBPerS float64 `json:"drift_ppb_per_s,omitempty"`
}

// ADEV returns the model's Allan deviation at τ seconds, dimensionless
// (1e-9 is 1 ppb), the drift counted as σ_y = D·τ/√2.
func (p PowerLaw) ADEV(tau float64) float64 {
	if tau <= 0 {
		return 0
	}
	v := 3*p.R/(tau*tau) + p.Qwf/tau + p.Qrw*tau/3 + p.DriftPPBPerS*p.DriftPPBPerS*tau*tau/2
	return math.Sqrt(v) * 1e-9
}

// MaxCalibrationRaise is the most Calibrate raises a noise term over the
// configured class's (a variance ratio: 10× in standard deviation).
const MaxCalibrationRaise = 100

// Calibrate returns the model to judge the PPS by, given the configured
// oscillator class and fit, the stability the node measured in the same
// notation (the bound estimator's Allan fit while it was trusted and
// locked). The short-term terms, timestamp noise R and white FM Qwf, are
// the measured ones clamped to between the class's and
// MaxCalibrationRaise times it:
//   - never below the class: a quiet stretch, or a fit that has not seen
//     the oscillator's worst, must not make the check hair-trigger;
//   - never above the cap: a fit that took in a slow spoofer, or a fault,
//     must not blind the check beyond a known factor.
//
// The long-term terms, random walk Qrw and the drift allowance, stay the
// class's: the fit has no drift term, so it takes a temperature swing
// for random walk (on the bench TCXO, 440 times the oscillator's own):
// taken as such, it loosened the long lags up to 4.7× and missed a
// 10 ns/s drag for 3 h. A term the class leaves out (zero) stays out.
func Calibrate(class, fit PowerLaw) PowerLaw {
	clamp := func(c, f float64) float64 {
		if c <= 0 || math.IsNaN(f) {
			return c
		}
		return min(max(f, c), c*MaxCalibrationRaise)
	}
	out := class
	out.R = clamp(class.R, fit.R)
	out.Qwf = clamp(class.Qwf, fit.Qwf)
	return out
}

// windowStat describes the PPS detector's statistic at one lag τ: the
// second difference of three consecutive τ-second phase means,
// D = x̄₃ − 2x̄₂ + x̄₁ (a modified-Allan statistic: averaging divides the
// timestamp noise by √τ, which is what makes a 10 ns/s drag visible on a
// TCXO). sigma is its standard deviation under the random noise of the
// model (ns) and drift the largest |D| the normal drift can produce (ns).
type windowStat struct {
	sigma, drift float64
}

// medianInflation multiplies the white phase variance because the
// detector averages a sliding median, whose efficiency against white
// noise is 2/π, not 1; 2 rounds π/2 up.
const medianInflation = 2

// statFor computes windowStat for lag tau (samples of 1 s) exactly, from
// the weights the statistic puts on each phase sample: white phase noise
// adds R·Σw², white FM (phase a random walk) Qwf·Σ(tail sums of w)², and
// random-walk FM (phase twice integrated) Qrw·Σ(Σ_{i>l} w_i·(i−l))².
// Components before the three windows cancel because Σw = Σw·i = 0.
func (p PowerLaw) statFor(tau int) windowStat {
	n := 3 * tau
	w := make([]float64, n)
	for i := range n {
		switch {
		case i < tau:
			w[i] = 1 / float64(tau)
		case i < 2*tau:
			w[i] = -2 / float64(tau)
		default:
			w[i] = 1 / float64(tau)
		}
	}
	var sw2 float64
	for _, v := range w {
		sw2 += v * v
	}
	// Tail sums T_j = Σ_{i≥j} w_i and U_l = Σ_{i>l} w_i·(i−l), both from
	// the end: U_l = U_{l+1} + T_{l+1}.
	var wf, rw, tail, u float64
	for j := n - 1; j >= 0; j-- {
		u += tail // tail is T_{j+1} here
		tail += w[j]
		wf += tail * tail
		rw += u * u
	}
	v := medianInflation*p.R*sw2 + p.Qwf*wf + p.Qrw*rw
	t := float64(tau)
	return windowStat{sigma: math.Sqrt(v), drift: p.DriftPPBPerS * t * t}
}
