package timing

import (
	"fmt"
	"time"

	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/timing/servo"
)

// sample runs one accepted offset through the servo, the bound estimator
// and the state machine.
func (d *Discipline) sample(p pps.Pulse, offset time.Duration) {
	localNs := p.Local.UnixNano() - d.stepNs
	d.holdAdjust = 0 // a sample again: the servo's own frequency from here
	out := d.servo.Sample(float64(offset), localNs)
	d.judgePrior()
	if out.State == servo.Jump {
		step := time.Duration(out.StepNs)
		if err := d.clk.Step(step); err != nil {
			d.log.Error("clock step failed", "step_ns", int64(step), "err", err)
			return
		}
		// Up to the step the clock ran at the frequency it had; from now
		// on it runs at the servo's, which after its robust start is the
		// frequency it estimated, and which its model assumes in force
		// from this sample on.
		d.est.AddSample(localNs, float64(offset), d.estFreq(d.cur.FrequencyPPB))
		d.est.Step(localNs, out.StepNs)
		d.stepNs += int64(step)
		d.history = d.history[:0] // states from before the lock
		if out.FreqPPB != d.cur.FrequencyPPB {
			if err := d.clk.SetFrequency(out.FreqPPB); err != nil {
				d.log.Error("set frequency failed", "freq_ppb", out.FreqPPB, "err", err)
			} else {
				d.est.SetFrequency(d.clk.Now().UnixNano()-d.stepNs, d.estFreq(out.FreqPPB))
				d.cur.FrequencyPPB = out.FreqPPB
			}
		}
		d.appliedAt, d.holding = d.clk.Now(), false
		d.cur.Steps++
		d.cur.Updated = p.Local.Add(step)
		if !d.lastEdge.IsZero() {
			d.lastEdge = d.lastEdge.Add(step)
		}
		for i := range d.awaiting {
			d.awaiting[i].edge = d.awaiting[i].edge.Add(step)
		}
		d.pulses = d.pulses[:0] // their timestamps predate the step
		d.offsets.reset()
		d.inLock, d.outOfLock = 0, 0
		d.log.Info("clock stepped", "step_ns", int64(step))
		d.transition(Acquiring, "stepped; converging")
		d.publish()
		return
	}
	// The edge is labelled only once its NMEA arrives, so the correction
	// takes effect now, not at the edge: the estimator is told the
	// frequency in force at the edge, then the change at its real time.
	prevFreq := d.cur.FrequencyPPB
	if err := d.clk.SetFrequency(out.FreqPPB); err != nil {
		d.log.Error("set frequency failed", "freq_ppb", out.FreqPPB, "err", err)
		return
	}
	now := d.clk.Now()
	appliedNs := now.UnixNano() - d.stepNs
	d.cur.FrequencyPPB = out.FreqPPB
	// A rejected sample's frequency is the servo's holdover frequency.
	d.appliedAt, d.holding = now, out.Rejected
	if out.Rejected {
		d.est.SetFrequency(appliedNs, d.estFreq(out.FreqPPB))
		if out.Disagree {
			// The clock or the reference moved by more than the step
			// threshold: whichever it was, no bound can be claimed.
			d.reject(RejectDisagree, "offset_ns", int64(offset))
			d.inLock = 0
			if d.cur.State == Locked || d.cur.State == Holdover {
				d.transition(Acquiring, fmt.Sprintf("reference and clock disagree by %v", offset))
			}
		} else {
			d.reject(RejectSpike, "offset_ns", int64(offset))
		}
		d.publish()
		return
	}
	if out.Clipped {
		// An early edge the servo down-weighted at its gate is left out
		// of the estimator's filter and Allan fit, which at face value it
		// would corrupt for hours, but counts in its model error, which
		// withdraws the servo's predictions for a while (their filters
		// did move a little). The steering it caused is counted all the
		// same (SetFrequency), and the state machine still judges the
		// face value (assess).
		d.est.Outlier()
	} else {
		d.est.AddSample(localNs, float64(offset), d.estFreq(prevFreq))
		d.preds = d.servo.Predictions(d.preds[:0])
		d.est.SetPredictions(d.preds)
		if m, ok := d.servo.Memory(); ok {
			d.cur.ServoMemory = &m
		}
		d.checkpoint(localNs)
	}
	d.est.SetFrequency(appliedNs, d.estFreq(out.FreqPPB))
	d.offsets.add(float64(offset))
	d.cur.Samples++
	d.cur.Offset = offset
	d.cur.Jitter = time.Duration(d.offsets.rms())
	d.cur.PulseQuality = p.Quality
	d.cur.Updated = p.Local

	d.assess(offset)
	d.publish()
}

// stop leaves the clock to whatever runs next, a restarted daemon or
// nothing, at the servo's frequency estimate rather than at its last
// output: that output's phase term is meant for one second (the servo's
// contract) and the kernel would run it for the whole stop. At a locked
// node's few hundred ns of phase, the term is a few hundred ppb, so a
// restart's seconds would cost microseconds.
func (d *Discipline) stop() {
	if d.holding || d.appliedAt.IsZero() {
		return
	}
	d.hold(d.clk.Now())
	d.log.Info("stopping: the clock holds the servo's frequency estimate", "freq_ppb", d.cur.FrequencyPPB)
}

// servoHoldAfter is how long the servo's output may run: its phase term
// is meant for one second (the servo's contract), and without a sample in
// that time the clock must hold the servo's frequency estimate instead. A
// missed pulse is not yet HOLDOVER, but the servo's model of it assumes
// the hold.
const servoHoldAfter = time.Second

// hold freezes the clock at the servo's estimate of the oscillator's own
// frequency, without the short-term phase correction of the last sample
// (moved to the estimate of before a suspect GNSS by holdAdjust, after a
// roll back). It also follows the temperature input, so it is applied
// again on every tick while the clock holds.
func (d *Discipline) hold(now time.Time) {
	d.holding = true
	f := d.servo.HoldoverFrequency() + d.holdAdjust
	if err := d.clk.SetFrequency(f); err != nil {
		d.log.Error("set holdover frequency failed", "freq_ppb", f, "err", err)
		return
	}
	d.est.SetFrequency(now.UnixNano()-d.stepNs, d.estFreq(f))
	d.cur.FrequencyPPB = f
}

// estFreq is what the bound estimator is told the correction is: the
// applied one plus the servo's modelled temperature term. The estimator
// then measures the stability of the oscillator with that term taken out,
// which is what a holdover that follows the temperature is left with;
// told only the applied correction, it measured the temperature swings
// the held frequency cancels, and its holdover bound grew hundreds of
// times faster than the error.
func (d *Discipline) estFreq(applied float64) float64 {
	return applied + d.servo.TemperatureTerm()
}

// SetTemperature gives the servo the oscillator's temperature (°C, any
// fixed origin) for the coming second: call it before each pulse and
// fix, from the goroutine that calls HandlePulse. A servo that uses it
// learns the frequency's sensitivity to temperature and, in holdover,
// the held frequency follows the temperature. Without calls the servo
// models no temperature term.
func (d *Discipline) SetTemperature(tempC float64) {
	d.tempInput = d.servo.SetTemperature(tempC)
}
