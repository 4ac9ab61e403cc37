package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/aunsorm/timenode/image/boottest/ppssync"
)

const (
	// resyncBudget bounds one resynchronisation, which runs between two
	// pulses: a host slower than this is not worth listening to.
	resyncBudget = 500 * time.Millisecond
	// maxRateUncertainty is the largest error of a drift-rate estimate
	// that the writer applies (5 ppm: 300 µs over a minute).
	maxRateUncertainty = 5e-6
	// maxRate is the largest drift rate believed: an emulated clock that
	// is further off than this has a problem extrapolation cannot fix.
	maxRate = 1e-3
)

// writer emits one pulse per host-UTC second on a Port, timed from a raw
// Clock through an anchor to host UTC.
type writer struct {
	clock Clock
	port  Port
	// resync returns a fresh anchor; nil never resynchronises.
	resync func(ctx context.Context) (ppssync.Anchor, error)
	log    io.Writer

	offset      time.Duration // pulse at every second + offset
	count       int           // pulses to emit; 0 until ctx is done
	every       time.Duration // resync interval; 0 never
	maxLate     time.Duration // a later wake-up skips the second
	spin        time.Duration // read the clock in a loop for the last spin
	maxUnc      time.Duration // reject resyncs less certain than this
	logEvery    int           // log one pulse in logEvery
	anchoredRaw time.Duration // raw-clock reading when the first anchor was taken

	emitted, skipped int
}

// run emits pulses from anchor a until count is reached (nil), ctx is
// done (nil) or a port write fails.
func (w *writer) run(ctx context.Context, a ppssync.Anchor) error {
	base := a
	lastSync := w.anchoredRaw
	var last int64
	haveLast := false
	for w.count == 0 || w.emitted < w.count {
		k := nextSecond(a.HostTime(w.clock.Now()), w.offset, last, haveLast)
		target := pulseTime(k, w.offset)
		deadline := a.RawTime(target)
		if err := sleepUntil(ctx, w.clock, deadline, w.spin); err != nil {
			return nil
		}
		start := w.clock.Now()
		late := start - deadline
		last, haveLast = k, true
		if late > w.maxLate {
			w.skipped++
			w.logf("skipped the pulse for %s: woke %v late (limit %v)", stamp(target), late, w.maxLate)
			continue
		}
		err := pulse(w.port)
		end := w.clock.Now()
		if err != nil {
			return fmt.Errorf("pulse for %s: %w", stamp(target), err)
		}
		w.emitted++
		if w.emitted == 1 || w.emitted%w.logEvery == 0 {
			w.logf("pulse %d for %s at %s (late %v, write %v)", w.emitted, stamp(target), stamp(a.HostTime(start)), late, end-start)
		}
		more := w.count == 0 || w.emitted < w.count
		if more && w.resync != nil && w.every > 0 && end-lastSync >= w.every {
			if na, ok := w.resynchronise(ctx, base, a); ok {
				a = na
				lastSync = end
			}
		}
	}
	return nil
}

// resynchronise asks for a fresh anchor and returns it with the drift
// rate measured since base, if it is good enough to replace cur.
func (w *writer) resynchronise(ctx context.Context, base, cur ppssync.Anchor) (ppssync.Anchor, bool) {
	rctx, cancel := context.WithTimeout(ctx, resyncBudget)
	defer cancel()
	na, err := w.resync(rctx)
	if err != nil {
		if ctx.Err() == nil {
			w.logf("resync failed, keeping the anchor (retry after the next pulse): %v", err)
		}
		return cur, false
	}
	if na.Uncertainty > w.maxUnc {
		w.logf("resync rejected: ±%v exceeds the limit of %v (retry after the next pulse)", na.Uncertainty, w.maxUnc)
		return cur, false
	}
	rate, unc, ok := ppssync.DriftRate(base, na)
	if ok && unc <= maxRateUncertainty && math.Abs(rate) <= maxRate {
		na = na.WithRate(rate)
	} else {
		na = na.WithRate(cur.Rate)
	}
	now := w.clock.Now()
	w.logf("resync: step %v, ±%v, rtt %v, rate %+.3fppm", na.HostTime(now).Sub(cur.HostTime(now)), na.Uncertainty, na.RTT, na.Rate*1e6)
	return na, true
}

func (w *writer) logf(format string, args ...any) {
	fmt.Fprintf(w.log, "ppswriter: "+format+"\n", args...)
}

// stamp formats host UTC for the log, to the nanosecond.
func stamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z")
}
