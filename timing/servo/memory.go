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
	// TempCo (ppb/°C) and TempCoVar ((ppb/°C)²) are the selected
	// filter's temperature coefficient and its variance.
	TempCo    float64 `json:"temp_co_ppb_per_c"`
	TempCoVar float64 `json:"temp_co_var"`
}

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
		m.Ratios, m.LogL = slices.Clone(m.Ratios), slices.Clone(m.LogL)
		return m, true
	}
	if !k.init || k.fixed || (k.nd2 <= minNoiseSamples && k.prior == 0) {
		return m, false
	}
	m.Ratios = make([]float64, len(k.bank))
	m.LogL = make([]float64, len(k.bank))
	for i, b := range k.bank {
		m.Ratios[i], m.LogL[i] = b.ratio, b.logL
	}
	m.Weight = math.Min(float64(k.n)+k.prior, k.scoreMemory())
	m.Selected = k.best
	f := &k.bank[k.best].f
	m.TempCo, m.TempCoVar = f.s[2], f.p[2][2]
	return m, true
}

// Validate reports what in m no Kalman bank could have made.
func (m Memory) Validate() error {
	if len(m.Ratios) == 0 || len(m.LogL) != len(m.Ratios) {
		return fmt.Errorf("%d bandwidths and %d likelihoods, want the same number, at least one", len(m.Ratios), len(m.LogL))
	}
	for i, r := range m.Ratios {
		if !(r > 0) || math.IsInf(r, 0) {
			return fmt.Errorf("bandwidth %d: noise ratio %v, want a finite positive one", i, r)
		}
		if l := m.LogL[i]; math.IsNaN(l) || math.IsInf(l, 0) {
			return fmt.Errorf("bandwidth %d: log-likelihood %v is not finite", i, l)
		}
	}
	if m.Selected < 0 || m.Selected >= len(m.Ratios) {
		return fmt.Errorf("selected filter %d of %d", m.Selected, len(m.Ratios))
	}
	if !(m.Weight >= 0 && m.Weight <= maxScoreMemory) {
		return fmt.Errorf("weight %v, want 0 to %d samples", m.Weight, maxScoreMemory)
	}
	if !(math.Abs(m.TempCo) <= maxTempCo) {
		return fmt.Errorf("temperature coefficient %v ppb/°C, want at most %g in size", m.TempCo, float64(maxTempCo))
	}
	if !(m.TempCoVar > 0) || math.IsInf(m.TempCoVar, 0) {
		return fmt.Errorf("temperature coefficient variance %v, want a finite positive one", m.TempCoVar)
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
	m.Ratios, m.LogL = slices.Clone(m.Ratios), slices.Clone(m.LogL) // the caller's may be published
	k.seed = &m
	return nil
}

// applySeed starts the bank from the seed, once, at its first sample.
func (k *Kalman) applySeed() {
	m := k.seed
	k.seed = nil
	for i := range k.bank {
		b := &k.bank[i]
		b.logL = m.LogL[i]
		b.f.s[2], b.f.p[2][2] = m.TempCo, m.TempCoVar
	}
	k.best, k.prior = m.Selected, m.Weight
}
