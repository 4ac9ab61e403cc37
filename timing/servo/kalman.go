package servo

import (
	"math"

	"github.com/aunsorm/timenode/timing/bound"
)

// KalmanConfig configures the Kalman servo. Zero fields take the defaults
// of DefaultKalmanConfig.
type KalmanConfig struct {
	// Noise, when set, fixes the noise model (R ns², Qwf ns²/s, Qrw
	// ppb²/s) and runs a single filter: the oracle of the simulation bench.
	// When nil the servo measures the timestamp noise and picks the filter
	// bandwidth online from a bank.
	Noise *bound.Noise
	// InitFreqSigmaPPB: uncertainty of the starting frequency (ppb).
	InitFreqSigmaPPB float64
	// PriorSigmaNs: timestamp noise assumed before it is measured (ns).
	PriorSigmaNs float64
	// MaxSlewPPB limits the phase-correction part of the output (ppb).
	MaxSlewPPB float64
	// MaxFreqPPB limits the whole output, as the kernel does (ppb).
	MaxFreqPPB float64
	// ScoreMemory is the time constant (samples) of the running mean
	// squared innovation by which the bank's filters are ranked.
	ScoreMemory float64
	// TempCoSigma is the prior uncertainty (ppb/°C) of the oscillator's
	// temperature coefficient, which the filter learns when SetTemperature
	// is used; in adaptive mode it may drift by TempCoDrift ((ppb/°C)² per
	// second), in oracle mode it is a constant.
	TempCoSigma, TempCoDrift float64
	// MinLogRatio and MaxLogRatio span the bank: filters with
	// Qrw/R = 10^x for x from min to max in half-decade steps.
	MinLogRatio, MaxLogRatio float64
}

// DefaultKalmanConfig returns the documented defaults.
func DefaultKalmanConfig() KalmanConfig {
	return KalmanConfig{
		InitFreqSigmaPPB: 20e3,
		PriorSigmaNs:     10e3,
		MaxSlewPPB:       500e3,
		MaxFreqPPB:       500e3,
		ScoreMemory:      4096,
		TempCoSigma:      2000,
		TempCoDrift:      1e-9,
		MinLogRatio:      -16,
		MaxLogRatio:      -1,
	}
}

// Kalman is a minimum-variance servo: Kalman filters on phase and
// free-running frequency, and a dead-beat control that cancels the
// estimated frequency and, over the next second, the estimated phase. With
// deadbeat control the true offset at each sample is just the filter's
// one-step prediction error, the least any causal servo can achieve on this
// model.
//
// Adaptive mode (KalmanConfig.Noise nil) runs a bank of filters of different
// bandwidth (ratio of random-walk frequency noise to timestamp noise) on the
// same samples and steers with the one whose innovations have been smallest
// lately; the timestamp noise itself comes from second differences of the
// free-running phase. Picking by innovation power picks the smallest
// prediction error, since the timestamp noise adds the same to every
// filter. This handles temperature wander, which no fixed model captures.
//
// The control model assumes the caller follows the Servo contract: the
// phase term of an output is applied for one second at most, after which
// the caller holds HoldoverFrequency.
type Kalman struct {
	cfg   KalmanConfig
	bank  []member
	best  int
	fixed bool

	init   bool
	freq0  float64
	lastNs int64
	uF, uP float64 // last output: frequency part and phase part (ppb)
	temp   float64 // temperature input (°C), 0 without a sensor
	n      int

	ctl      float64    // control phase steered in since Reset (ns)
	hist     [2]float64 // last two free phases
	histOK   int        // how many consecutive one-second samples in hist
	d2, rHat float64
	nd2      int // second differences seen
}

// minNoiseSamples is how many second differences the timestamp-noise
// estimate needs before it replaces the prior.
const minNoiseSamples = 32

type member struct {
	f     tempFilter
	ratio float64 // Qrw / R
	score float64
}

// NewKalman returns a Kalman servo algorithm.
func NewKalman(cfg KalmanConfig) *Kalman {
	d := DefaultKalmanConfig()
	for _, p := range []struct{ v, def *float64 }{
		{&cfg.InitFreqSigmaPPB, &d.InitFreqSigmaPPB}, {&cfg.PriorSigmaNs, &d.PriorSigmaNs},
		{&cfg.MaxSlewPPB, &d.MaxSlewPPB}, {&cfg.MaxFreqPPB, &d.MaxFreqPPB},
		{&cfg.ScoreMemory, &d.ScoreMemory}, {&cfg.TempCoSigma, &d.TempCoSigma},
		{&cfg.TempCoDrift, &d.TempCoDrift},
	} {
		if *p.v <= 0 {
			*p.v = *p.def
		}
	}
	if cfg.MinLogRatio == 0 && cfg.MaxLogRatio == 0 {
		cfg.MinLogRatio, cfg.MaxLogRatio = d.MinLogRatio, d.MaxLogRatio
	}
	k := &Kalman{cfg: cfg, rHat: cfg.PriorSigmaNs * cfg.PriorSigmaNs}
	if cfg.Noise != nil {
		k.fixed = true
		k.bank = []member{{f: tempFilter{R: cfg.Noise.R, Qwf: cfg.Noise.Qwf, Qrw: cfg.Noise.Qrw}}}
		return k
	}
	for x := cfg.MinLogRatio; x <= cfg.MaxLogRatio+1e-9; x += 0.5 {
		k.bank = append(k.bank, member{ratio: math.Pow(10, x)})
	}
	k.best = len(k.bank) / 2
	return k
}

// Reset implements Algorithm.
func (k *Kalman) Reset(freqPPB float64) {
	k.init, k.freq0, k.uF, k.uP, k.n = false, freqPPB, freqPPB, 0, 0
	k.ctl, k.histOK = 0, 0
}

// Sample implements Algorithm.
func (k *Kalman) Sample(offsetNs float64, localNs int64) float64 {
	k.n++
	if !k.init {
		k.init = true
		for i := range k.bank {
			m := &k.bank[i]
			k.tune(m)
			m.f.init(offsetNs, math.Sqrt(m.f.R), -k.freq0, k.cfg.InitFreqSigmaPPB, 0, k.cfg.TempCoSigma)
			m.score = 0
		}
	} else {
		dt := float64(localNs-k.lastNs) / 1e9
		if dt <= 0 {
			dt = 1e-3
		}
		control := k.uF*dt + k.uP*math.Min(dt, 1)
		k.ctl += control
		k.measureNoise(offsetNs-k.ctl, dt)
		// Innovations are clipped at 5σ of the timestamp noise so that the
		// acquisition transient does not dominate the ranking for long.
		alpha := math.Max(1/k.cfg.ScoreMemory, 1/float64(k.n))
		clip := 25 * k.rHat
		for i := range k.bank {
			m := &k.bank[i]
			k.tune(m)
			m.f.predict(dt, k.temp, control)
			innov := m.f.innovation(offsetNs)
			m.score += alpha * (math.Min(innov*innov, clip) - m.score)
			m.f.update(offsetNs)
			if m.score < k.bank[k.best].score {
				k.best = i
			}
		}
		for i := range k.bank {
			if k.bank[i].score < k.bank[k.best].score {
				k.best = i
			}
		}
	}
	k.lastNs = localNs
	f := &k.bank[k.best].f
	lim := k.cfg.MaxFreqPPB
	k.uF = math.Max(-lim, math.Min(lim, -f.s[1]-f.s[2]*k.temp))
	k.uP = math.Max(-k.cfg.MaxSlewPPB, math.Min(k.cfg.MaxSlewPPB, -f.s[0]))
	total := math.Max(-lim, math.Min(lim, k.uF+k.uP))
	k.uP = total - k.uF
	return total
}

// tune sets a bank member's noise from the measured timestamp noise.
func (k *Kalman) tune(m *member) {
	if k.fixed {
		return
	}
	m.f.R, m.f.Qwf, m.f.Qrw, m.f.Qc = k.rHat, 0, m.ratio*k.rHat, k.cfg.TempCoDrift
}

// measureNoise estimates the timestamp noise variance from second
// differences of the free-running phase p at one-second spacing: for white
// phase noise their variance is six times the noise variance.
func (k *Kalman) measureNoise(p, dt float64) {
	if math.Abs(dt-1) > 0.1 {
		k.histOK = 0
	}
	if k.histOK >= 2 {
		d := p - 2*k.hist[1] + k.hist[0]
		k.nd2++
		alpha := math.Max(1/k.cfg.ScoreMemory, 1/float64(k.nd2))
		k.d2 += alpha * (d*d - k.d2)
		// The prior stands until a few dozen differences are in: a noise
		// estimate from a handful would make the filters overconfident
		// and lock in a poor temperature coefficient.
		if k.nd2 >= minNoiseSamples {
			k.rHat = math.Max(1, k.d2/6)
		}
	}
	k.hist[0], k.hist[1] = k.hist[1], p
	k.histOK = min(k.histOK+1, 2)
}

// HoldoverFrequency implements Holder: the correction that cancels the
// estimated free-running frequency at the last temperature given.
func (k *Kalman) HoldoverFrequency() float64 {
	if !k.init {
		return k.uF
	}
	f := &k.bank[k.best].f
	lim := k.cfg.MaxFreqPPB
	return math.Max(-lim, math.Min(lim, -f.s[1]-f.s[2]*k.temp))
}

// SetTemperature implements TempInput: the oscillator temperature (°C)
// over the coming interval. The filter learns the frequency's sensitivity
// to it and follows it, in lock and in holdover.
func (k *Kalman) SetTemperature(tempC float64) { k.temp = tempC }

// TempCoefficient returns the learnt frequency sensitivity to temperature
// (ppb/°C) of the selected filter.
func (k *Kalman) TempCoefficient() float64 { return k.bank[k.best].f.s[2] }

// Bandwidth returns the selected filter's Qrw/R ratio (0 in oracle mode),
// for diagnostics.
func (k *Kalman) Bandwidth() float64 { return k.bank[k.best].ratio }

var (
	_ Algorithm = (*Kalman)(nil)
	_ Holder    = (*Kalman)(nil)
	_ TempInput = (*Kalman)(nil)
)

// NoiseSigma returns the measured timestamp noise (ns, standard deviation).
func (k *Kalman) NoiseSigma() float64 { return math.Sqrt(k.rHat) }
