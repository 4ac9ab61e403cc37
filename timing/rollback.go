package timing

import (
	"time"

	"github.com/aunsorm/timenode/timing/bound"
)

// checkpoint is the discipline's state at one sample: what the servo
// would hold in holdover (without its temperature term, which follows the
// temperature of the hour) and the bound estimator's tracking state.
type checkpoint struct {
	localNs int64 // on the step-free timebase of the servo and estimator
	freqPPB float64
	est     bound.Checkpoint
}

// Checkpoints are taken every checkpointEvery of samples and kept for
// historyLen of them (4.6 h): longer than the PPS integrity check looks
// back to its clean line (its longest test spans 3.4 h). They are taken
// only once the clock has been LOCKED for checkpointSettled: before that
// the servo's frequency is still settling (in the simulator's first
// minute a checkpoint 24 s old was 19 ppm off), and holding it would run
// the clock off faster than any drag.
const (
	checkpointEvery   = 16 * time.Second
	historyLen        = 1024
	checkpointSettled = 5 * time.Minute
)

// SetSuspectSince tells the discipline that the GNSS it followed may have
// been false since t (the integrity guard's judgement; zero: no such
// time). Safe from any goroutine. Call it before SetWithheld(true): when
// the withheld GNSS puts the clock into HOLDOVER, the discipline holds
// the frequency it had estimated before t, and its bound grows from the
// estimator's state of then, rather than going on at a frequency a slow
// drag may have pulled along with it.
func (d *Discipline) SetSuspectSince(t time.Time) {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	d.suspectSince.Store(ns)
}

// checkpoint records the state after an accepted sample at localNs, once
// per checkpointEvery, while the clock has been LOCKED for
// checkpointSettled.
func (d *Discipline) checkpoint(localNs int64) {
	if d.cur.State != Locked || d.clk.Now().Sub(d.cur.StateSince) < checkpointSettled {
		return
	}
	if n := len(d.history); n > 0 && localNs-d.history[n-1].localNs < int64(checkpointEvery) {
		return
	}
	cp, ok := d.est.Checkpoint()
	if !ok {
		return
	}
	if len(d.history) == historyLen {
		d.history = append(d.history[:0], d.history[1:]...)
	}
	d.history = append(d.history, checkpoint{localNs: localNs, freqPPB: d.baseFrequency(), est: cp})
}

// baseFrequency is the servo's holdover frequency without its temperature
// term.
func (d *Discipline) baseFrequency() float64 {
	return d.servo.HoldoverFrequency() + d.servo.TemperatureTerm()
}

// rollBack returns to the newest checkpoint at or before the suspect time,
// if one was set and the history reaches back to it: the holdover then
// holds that checkpoint's frequency and the estimator tracks from its
// state, and the checkpoints after it are dropped. It logs what it did.
func (d *Discipline) rollBack(now time.Time) {
	ns := d.suspectSince.Swap(0)
	if ns == 0 {
		return
	}
	since := time.Unix(0, ns)
	if now.Sub(since) < checkpointEvery {
		// Nothing says the GNSS went wrong before this moment: the
		// servo's state is as good as any checkpoint's, and its
		// predictions keep the bound tight.
		return
	}
	at := ns - d.stepNs
	i := len(d.history) - 1
	for i >= 0 && d.history[i].localNs > at {
		i--
	}
	if i < 0 {
		d.log.Warn("holding over at the current frequency: GNSS is suspect since before the kept history of the settled lock",
			"suspect_since", since, "history_s", len(d.history)*int(checkpointEvery/time.Second))
		return
	}
	cp := d.history[i]
	d.history = d.history[:i+1]
	d.holdAdjust = cp.freqPPB - d.baseFrequency()
	d.est.Restore(cp.est)
	d.log.Warn("holding over from the state before GNSS became suspect",
		"suspect_since", since, "checkpoint_age_s", int64(time.Duration(now.UnixNano()-d.stepNs-cp.localNs).Seconds()),
		"freq_change_ppb", d.holdAdjust)
}
