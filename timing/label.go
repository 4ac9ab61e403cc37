package timing

import (
	"time"

	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
)

// HandlePulse labels an edge at once when the labels so far make its
// second certain (the previous edge was labelled, and this one is a whole
// number of seconds later), so the servo's correction takes effect at the
// edge as its model assumes; the NMEA for that second must then confirm
// the label. Otherwise the edge waits for the NMEA to name its second.
func (d *Discipline) HandlePulse(p pps.Pulse) {
	d.cur.LastPulse = p.Local // for /health's last pulse age, published on the next tick
	if n := len(d.pulses); n > 0 && !p.Local.After(d.pulses[n-1].Local.Add(d.cfg.MinNMEADelay)) {
		// A second edge within a few ms of the previous one: a double edge.
		return
	}
	if !d.lastEdge.IsZero() && !p.Local.After(d.lastEdge.Add(d.cfg.MinNMEADelay)) {
		return // a double edge right after a labelled one
	}
	if label, ok := d.predict(p); ok {
		d.awaiting = append(d.awaiting, labelled{label: label, edge: p.Local})
		d.lastLabel, d.lastEdge = label, p.Local
		d.sample(p, p.Local.Sub(label))
		return
	}
	d.pulses = append(d.pulses, p)
	if len(d.pulses) > 4 {
		d.pulses = d.pulses[len(d.pulses)-4:]
	}
}

// predict labels p by continuity with the last labelled edge: only with a
// valid fix, an edge 1-2 whole seconds after it (within 1 ms, far above
// any oscillator error over two seconds), and few labels unconfirmed.
func (d *Discipline) predict(p pps.Pulse) (time.Time, bool) {
	if d.lastEdge.IsZero() || !d.fixValid || len(d.awaiting) >= maxUnconfirmed {
		return time.Time{}, false
	}
	gap := p.Local.Sub(d.lastEdge)
	n := gap.Round(time.Second)
	if n < time.Second || n > 2*time.Second || abs(gap-n) > time.Millisecond {
		return time.Time{}, false
	}
	return d.lastLabel.Add(n), true
}

// confirm matches a fix against the labels given ahead of it. It reports
// whether the fix was one of them (and so needs no pairing).
func (d *Discipline) confirm(f gnss.Fix) bool {
	if len(d.awaiting) == 0 {
		return false
	}
	if !d.confirmd.IsZero() && !f.UTC.After(d.confirmd) {
		d.reject(RejectDuplicate, "utc", f.UTC)
		return true
	}
	for i, a := range d.awaiting {
		if f.UTC.Equal(a.label) {
			d.awaiting = d.awaiting[i+1:]
			d.confirmd = a.label
			d.delay.add(f.Received.Sub(a.edge))
			return true
		}
	}
	if f.UTC.Before(d.awaiting[0].label) {
		return true // NMEA for an edge labelled before prediction began
	}
	// The receiver names a second we did not predict: our labels are
	// wrong, or the receiver jumped. Stop predicting and re-pair.
	d.reject(RejectMislabel, "utc", f.UTC, "predicted", d.awaiting[0].label)
	d.awaiting = d.awaiting[:0]
	d.lastEdge, d.lastLabel = time.Time{}, time.Time{}
	return false
}

// HandleFix confirms a label given ahead of the NMEA, or labels the edge
// that preceded the fix's first byte with the fix's UTC second and feeds
// the offset to the servo.
func (d *Discipline) HandleFix(f gnss.Fix) {
	d.fixValid = f.Valid
	if f.Valid {
		d.cur.LastFix = f.Received // for /health's last fix age
	}
	if !f.Valid {
		d.awaiting = d.awaiting[:0]
		d.reject(RejectNoFix, "utc", f.UTC)
		d.setReason("GNSS receiver has no valid fix")
		return
	}
	if f.UTC.Nanosecond() != 0 {
		return // a sub-second epoch of a fast receiver names no edge
	}
	if d.confirm(f) {
		return
	}
	idx := -1
	for i := len(d.pulses) - 1; i >= 0; i-- {
		if !d.pulses[i].Local.After(f.Received) {
			idx = i
			break
		}
	}
	if idx < 0 {
		if d.cfg.NMEAOnlyStratum != 0 && (d.cur.State == Holdover || d.cur.State == Unsynchronized) {
			d.nmeaSample(f)
			return
		}
		d.reject(RejectNoPulse, "utc", f.UTC)
		d.setReason("no PPS edge before NMEA")
		return
	}
	p := d.pulses[idx]
	d.pulses = d.pulses[idx+1:]
	delay := f.Received.Sub(p.Local)
	if lo, hi := d.delayWindow(); delay < lo || delay > hi {
		d.reject(RejectAmbiguous, "utc", f.UTC, "nmea_delay_ms", delay.Milliseconds())
		return
	}
	if !f.UTC.After(d.lastLabel) {
		d.reject(RejectDuplicate, "utc", f.UTC)
		return
	}
	if !d.continuous(p, f.UTC) {
		d.reject(RejectJump, "utc", f.UTC, "last_utc", d.lastLabel)
		return
	}
	offset := p.Local.Sub(f.UTC)
	d.lastLabel, d.lastEdge, d.confirmd = f.UTC, p.Local, f.UTC
	d.delay.add(delay)
	d.sample(p, offset)
}

// continuous checks that labels advance exactly as the edges do: between
// two accepted edges n local seconds apart the labels must differ by n
// seconds. A late-delivered sentence that would pair an edge with the
// previous second's label is caught here, before it can cause a one-second
// step. Three breaks in a row mean the earlier label was the wrong one, so
// continuity restarts from the new pair.
func (d *Discipline) continuous(p pps.Pulse, utc time.Time) bool {
	if d.lastEdge.IsZero() {
		return true
	}
	gap := p.Local.Sub(d.lastEdge)
	if gap <= 0 || gap > 30*time.Second {
		return true // too far apart to say; the other checks decide
	}
	want := d.lastLabel.Add(gap.Round(time.Second))
	if utc.Equal(want) {
		d.breaks = 0
		return true
	}
	d.breaks++
	if d.breaks >= 3 {
		d.breaks = 0
		return true
	}
	return false
}

// sample runs one accepted offset through the servo, the bound estimator
