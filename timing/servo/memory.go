package servo

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Memory is what the Kalman bank has learnt that outlives a restart of
// the daemon: which bandwidths its samples favoured (each filter's
// log-likelihood, and how many samples' worth of forgetting stand behind
// them) and the oscillator's temperature coefficient with its variance.
// A restarted servo without it ranks its filters on minutes of samples,
// and the servo's predictions then admit a wider set of models, whose
// faster members widen the holdover bound; and it learns the coefficient
// again over hours of temperature swing.
type Memory struct {
	// Ratios is each bank filter's Qrw/R, to match the bank it seeds.
	Ratios []float64 `json:"noise_ratios"`
	// LogL is each filter's log-likelihood, Weight the samples behind
	// it; Selected is the filter the servo steered with (the ranking's
	// hysteresis may keep it a little below the best).
	LogL     []float64 `json:"log_likelihoods"`
	Weight   float64   `json:"weight_samples"`
	Selected int       `json:"selected"`
	// LogLLong is each filter's log-likelihood over the longer memory
	// (Kalman.Predictions), WeightLong the samples behind it; absent in
	// files from before they were kept, which start them from LogL and
	// Weight.
	LogLLong   []float64 `json:"log_likelihoods_long,omitempty"`
	WeightLong float64   `json:"weight_long_samples,omitempty"`
	// TempCo (ppb/°C) and TempCoVar ((ppb/°C)²) are the temperature
	// coefficient the servo steers by and its variance (the mixture's,
	// Kalman.mix; the selected filter's before the ranking settles).
	TempCo    float64 `json:"temp_co_ppb_per_c"`
	TempCoVar float64 `json:"temp_co_var"`
	// FreqPPB is the free-running frequency of the oscillator the
	// servo steers by (ppb), FreqVar its variance (ppb²), both the
	// mixture's as TempCo's, and FreqWalk the filters' random-walk FM
	// (ppb²/s, their weighted mean), which grows the variance over a
	// gap. FreqVar 0: none kept. Only a restart on the same clock may use
	// them (Servo.SetFrequencyPrior): the bank's seed leaves them out.
	FreqPPB  float64 `json:"freq_ppb,omitempty"`
	FreqVar  float64 `json:"freq_var_ppb2,omitempty"`
	FreqWalk float64 `json:"freq_walk_ppb2_per_s,omitempty"`
}

// maxFreqPPB bounds a kept free-running frequency (ppb): the servo's own
// clamp is ±500 ppm, and no oscillator it can steer is off by more.
const maxFreqPPB = 500e3

// maxTempCo bounds a kept temperature coefficient (ppb/°C): a hundred
// times a cheap crystal's, far beyond what any oscillator has.
const maxTempCo = 1e5

// Memory returns the bank's memory: a seeded bank's from its seed on
// (the seed itself until it is applied), so that a node restarted twice
// in quick succession keeps what the first run learnt. ok is false for
// an unseeded bank while it has none of its own (before the timestamp
// noise is measured, the likelihoods judge the prior) and in oracle
// mode, which has no bank.
func (k *Kalman) Memory() (m Memory, ok bool) {
	if k.seed != nil {
		m = *k.seed
		m.Ratios, m.LogL, m.LogLLong = slices.Clone(m.Ratios), slices.Clone(m.LogL), slices.Clone(m.LogLLong)
		// The seed's frequency is as old as the seed; this run has
		// measured none yet.
		m.FreqPPB, m.FreqVar, m.FreqWalk = 0, 0, 0
		return m, true
	}
	if !k.init || k.fixed || (k.nd2 <= minNoiseSamples && k.prior == 0) {
		return m, false
	}
	m.Ratios = make([]float64, len(k.bank))
	m.LogL = make([]float64, len(k.bank))
	m.LogLLong = make([]float64, len(k.bank))
	for i, b := range k.bank {
		m.Ratios[i], m.LogL[i], m.LogLLong[i] = b.ratio, b.logL, b.logLLong
	}
	m.Weight = math.Min(float64(k.n)+k.prior, k.scoreMemory())
	m.WeightLong = math.Min(float64(k.n)+k.priorLong, longMemory*k.scoreMemory())
	m.Selected = k.best
	// The frequency and coefficient are the steering's (mix, computed
	// at every sample from the bank as it stands), which a stopping
	// daemon leaves the clock at, with the mixture's variance: the
	// filters' own, weighted, plus their spread about the mean.
	var vr [2]float64
	var walk float64
	sum := k.mixture(func(b *member, w float64) {
		d0, d1 := b.f.s[1]-k.steer[1], b.f.s[2]-k.steer[2]
		vr[0] += w * (b.f.p[1][1] + d0*d0)
		vr[1] += w * (b.f.p[2][2] + d1*d1)
		walk += w * b.f.Qrw
	})
	m.FreqPPB, m.FreqVar, m.FreqWalk = k.steer[1], vr[0]/sum, walk/sum
	m.TempCo, m.TempCoVar = k.steer[2], vr[1]/sum
	return m, true
}

// Validate reports what in m no Kalman bank could have made.
func (m Memory) Validate() error {
	if len(m.Ratios) == 0 || len(m.LogL) != len(m.Ratios) {
		return fmt.Errorf("%d bandwidths and %d likelihoods, want the same number, at least one", len(m.Ratios), len(m.LogL))
	}
	if m.LogLLong != nil && len(m.LogLLong) != len(m.Ratios) {
		return fmt.Errorf("%d bandwidths and %d long-memory likelihoods, want the same number", len(m.Ratios), len(m.LogLLong))
	}
	for i, r := range m.Ratios {
		if !(r > 0) || math.IsInf(r, 0) {
			return fmt.Errorf("bandwidth %d: noise ratio %v, want a finite positive one", i, r)
		}
		if l := m.LogL[i]; math.IsNaN(l) || math.IsInf(l, 0) {
			return fmt.Errorf("bandwidth %d: log-likelihood %v is not finite", i, l)
		}
		if m.LogLLong != nil && (math.IsNaN(m.LogLLong[i]) || math.IsInf(m.LogLLong[i], 0)) {
			return fmt.Errorf("bandwidth %d: long-memory log-likelihood %v is not finite", i, m.LogLLong[i])
		}
	}
	if m.Selected < 0 || m.Selected >= len(m.Ratios) {
		return fmt.Errorf("selected filter %d of %d", m.Selected, len(m.Ratios))
	}
	if !(m.Weight >= 0 && m.Weight <= maxScoreMemory) {
		return fmt.Errorf("weight %v, want 0 to %d samples", m.Weight, maxScoreMemory)
	}
	if !(m.WeightLong >= 0 && m.WeightLong <= longMemory*maxScoreMemory) {
		return fmt.Errorf("long-memory weight %v, want 0 to %d samples", m.WeightLong, longMemory*maxScoreMemory)
	}
	if !(math.Abs(m.TempCo) <= maxTempCo) {
		return fmt.Errorf("temperature coefficient %v ppb/°C, want at most %g in size", m.TempCo, float64(maxTempCo))
	}
	if !(m.TempCoVar > 0) || math.IsInf(m.TempCoVar, 0) {
		return fmt.Errorf("temperature coefficient variance %v, want a finite positive one", m.TempCoVar)
	}
	if !(math.Abs(m.FreqPPB) <= maxFreqPPB) {
		return fmt.Errorf("frequency %v ppb, want at most %g in size", m.FreqPPB, float64(maxFreqPPB))
	}
	if !(m.FreqVar >= 0) || math.IsInf(m.FreqVar, 0) || !(m.FreqWalk >= 0) || math.IsInf(m.FreqWalk, 0) {
		return fmt.Errorf("frequency variance %v and random walk %v, want finite ones, not negative", m.FreqVar, m.FreqWalk)
	}
	return nil
}

// Seed makes the bank start from an earlier run's memory (Memory) the
// next time it starts (its first sample after the servo's start): each
// filter's likelihood begins at the kept one, with its weight, so the
// ranking goes on where it was; the selected filter is the kept one; and
// every filter starts from the kept temperature coefficient and its
// variance instead of the prior. The bank's own samples then take over
// as its forgetting allows. The memory must come from a bank of the same
// bandwidths.
func (k *Kalman) Seed(m Memory) error {
	if k.fixed {
		return errors.New("servo: a fixed noise model has no bank to seed")
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("servo: kept memory: %w", err)
	}
	if len(m.Ratios) != len(k.bank) {
		return fmt.Errorf("servo: kept memory of %d bandwidths, the bank has %d", len(m.Ratios), len(k.bank))
	}
	for i, r := range m.Ratios {
		if math.Abs(r/k.bank[i].ratio-1) > 1e-9 {
			return fmt.Errorf("servo: kept bandwidth %d is %g, the bank's %g", i, r, k.bank[i].ratio)
		}
	}
	m.Ratios, m.LogL, m.LogLLong = slices.Clone(m.Ratios), slices.Clone(m.LogL), slices.Clone(m.LogLLong) // the caller's may be published
	// A memory kept before the long sums were starts them from the ranking's.
	if m.LogLLong == nil {
		m.LogLLong, m.WeightLong = slices.Clone(m.LogL), m.Weight
	}
	k.seed = &m
	return nil
}

// applySeed starts the bank from the seed, once, at its first sample
// (after startFrequency, which has taken the seed's temperature term out
// of the starting frequency).
func (k *Kalman) applySeed() {
	m := k.seed
	k.seed = nil
	for i := range k.bank {
		b := &k.bank[i]
		b.logL, b.logLLong = m.LogL[i], m.LogLLong[i]
		b.f.s[2], b.f.p[2][2] = m.TempCo, m.TempCoVar
	}
	k.best, k.prior, k.priorLong = m.Selected, m.Weight, m.WeightLong
}

// priorAgreeSigmas is how far, in standard deviations of their
// difference, the filters' own frequency may be from a kept one for the
// two to be taken as one oscillator's: a kept value this far off was not
// this oscillator's (chrony changed the kernel's tick meanwhile, say, or
// the board was moved to a hot room) and is dropped.
const priorAgreeSigmas = 4

// minPriorSigmaPPB is the least uncertainty a kept frequency is taken
// with, however well it was known: what the filters' random walk does not
// model (ageing, a temperature the sensor does not see) must not make
// them too sure of it.
const minPriorSigmaPPB = 2

// priorAfterSamples is when the filters judge a kept frequency: after
// five minutes of their own samples they know the frequency to tens of
// ppb even under 50 µs timestamps, so a kept value they cannot tell from
// theirs at that point is one they could not have refused later either.
// The seven samples of the servo's start would let a kept value tens of
// ppm off through.
const priorAfterSamples = 300

// PriorVerdict is what the filters made of a kept frequency
// (SetFrequencyPrior): the kept free-running frequency with its standard
// deviation (ppb), the selected filter's own as it judged it, and whether
// the filters took the kept one in. Withdrawn: the servo re-acquired (a
// step) before the filters could judge it, and the filters it was offered
// to are gone; FilterPPB and FilterSigma are then zero.
type PriorVerdict struct {
	Used, Withdrawn        bool
	KeptPPB, KeptSigma     float64
	FilterPPB, FilterSigma float64
}

// SetFrequencyPrior offers the filters the oscillator's free-running
// frequency y (ppb, as Memory.FreqPPB, with the kept temperature
// coefficient's term out) that an earlier run on this clock measured,
// with standard deviation sigma grown over the gap since. After
// priorAfterSamples of their own samples the filters judge it: if it
// agrees with theirs, each takes it in as a measurement of its frequency,
// else it is dropped. Reset withdraws a value not yet judged, with a
// verdict that says so.
func (k *Kalman) SetFrequencyPrior(y, sigma float64) {
	if k.fixed || !(sigma > 0) || math.IsInf(sigma, 0) || !(math.Abs(y) <= maxFreqPPB) {
		return
	}
	k.freqPrior = &frequencyPrior{y: y, sigma: math.Max(sigma, minPriorSigmaPPB)}
}

// TakePriorVerdict returns, once, what the filters made of a kept
// frequency; ok is false until they have judged one.
func (k *Kalman) TakePriorVerdict() (v PriorVerdict, ok bool) {
	v, ok = k.verdict, k.judged
	k.judged = false
	return v, ok
}

// judgePrior takes the kept frequency in as a measurement of every
// filter's frequency if the selected filter's agrees with it.
func (k *Kalman) judgePrior() {
	p := k.freqPrior
	k.freqPrior = nil
	f := &k.bank[k.best].f
	v := PriorVerdict{KeptPPB: p.y, KeptSigma: p.sigma, FilterPPB: f.s[1], FilterSigma: math.Sqrt(f.p[1][1])}
	if math.Abs(p.y-f.s[1]) <= priorAgreeSigmas*math.Sqrt(f.p[1][1]+p.sigma*p.sigma) {
		for i := range k.bank {
			k.bank[i].f.updateState(1, p.y, p.sigma*p.sigma)
		}
		v.Used = true
	}
	k.verdict, k.judged = v, true
}

// startFrequency returns the free-running frequency (ppb) the filters
// start from: the start's whole rate (−freq0) with a seeded temperature
// term taken out, since the start measured it at today's temperature.
func (k *Kalman) startFrequency() float64 {
	y := -k.freq0
	if k.seed != nil {
		y -= k.seed.TempCo * k.temp
	}
	return y
}
