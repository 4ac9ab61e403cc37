package bound

import "math"

// Prediction is another filter's estimate of the clock at the last sample
// (the servo's, when it runs a Kalman filter): the offset (ns) and the
// oscillator's free-running frequency (ppb, in the frame the estimator is
// told the corrections in) just after that sample, their covariance, and the
// random-walk frequency noise (ppb²/s) that filter assumes.
//
// Under the filter's own model the offset dt seconds later is normal with
// mean PhaseNs + FreqPPB·dt plus the corrections applied meanwhile, and
// variance Pxx + 2·dt·Pxy + dt²·Pyy + Qrw·dt³/3.
type Prediction struct {
	PhaseNs, FreqPPB float64
	Pxx, Pxy, Pyy    float64
	Qrw              float64
	// RecentOnly: only the servo's recent samples back the model, its
	// longer history excludes it; beyond LongHorizon its variance is
	// held at its LongHorizon value. HistoryOnly: only the longer
	// history backs it; it bounds only beyond LongHorizon. The zero
	// value, backed by both, bounds at every horizon.
	RecentOnly, HistoryOnly bool
}

// LongHorizon (seconds) is how far past the sample a model that only the
// recent samples back grows the bound: four times the 2.5 s a LOCKED
// discipline waits for a pulse before it holds over, so that every
// locked second is bounded by the recent set alone, as before the
// longer history was consulted.
const LongHorizon = 10.0

// maxPredNIS is the estimator's normalised innovation power (1 when its
// own model fits) above which the predictions are not used: a timestamp
// their models call impossible got through (an early edge: the spike
// filters only judge late ones), it moved every filter the servo runs,
// and their covariances do not know it. The estimator's own bound,
// inflated by that power, stands alone until it has decayed.
const maxPredNIS = 1.5

// project returns the predicted offset and its variance dt seconds after
// the sample, ctlNs being the phase steered in since, with the random
// walk limited by l.
func (p Prediction) project(dt, ctlNs float64, l walkLimit) (x, v float64) {
	x = p.PhaseNs + p.FreqPPB*dt + ctlNs
	v = p.Pxx + 2*dt*p.Pxy + dt*dt*p.Pyy + l.walkVar(p.Qrw, dt)
	return x, math.Max(v, 0)
}

// walkLimit is the limit the frequency history sets on the models'
// random walks: its range, taken as K standard deviations, over its span.
func (e *Estimator) walkLimit() walkLimit {
	r, span, ok := e.wander.limit()
	if !ok {
		return walkLimit{}
	}
	c := r / e.cfg.K
	return walkLimit{capVar: c * c, spanS: span}
}

// SetPredictions gives the estimator the predictions, made with the last
// sample added, of every model of the clock the servo's data cannot
// exclude (for the Kalman bank: every filter whose recent likelihood, or
// whose likelihood over a longer history, is within two nats of the
// best). Bound then also considers the bound they imply together, the
// largest |mean| + K·σ among them (with RecentOnly and HistoryOnly
// honoured), and publishes the smaller of the two. Each is honest on its
// own assumptions (the predictions': that the clock follows one of the
// models its horizon counts), so the smaller fails at most as often as
// both together.
// Nil or empty withdraws them (a step, a servo restart, or a servo that
// has no covariance).
func (e *Estimator) SetPredictions(ps []Prediction) {
	e.preds = append(e.preds[:0], ps...)
	e.predNs, e.predCtl = e.lastNs, e.sampleCtl
}

// predBound returns the bound the predictions imply at atLocalNs, the
// largest |mean| + K·σ among those that bound that horizon (ok false
// without one).
func (e *Estimator) predBound(atLocalNs int64) (float64, bool) {
	if len(e.preds) == 0 || atLocalNs < e.predNs || e.nis > maxPredNIS {
		return 0, false
	}
	dt := float64(atLocalNs-e.predNs) / 1e9
	ctl := e.ctlAt(atLocalNs) - e.predCtl
	b, n := 0.0, 0
	l := e.walkLimit()
	for _, p := range e.preds {
		if p.HistoryOnly && dt <= LongHorizon {
			continue
		}
		x, v := p.project(dt, ctl, l)
		if p.RecentOnly && dt > LongHorizon {
			_, v = p.project(LongHorizon, ctl, l)
		}
		b = math.Max(b, math.Abs(x)+e.cfg.K*math.Sqrt(v))
		n++
	}
	return b, n > 0
}
