package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/aunsorm/timenode/timing"
	"github.com/aunsorm/timenode/timing/bound"
	"github.com/aunsorm/timenode/timing/integrity"
)

// stabilityFile, in the state directory, keeps the oscillator's measured
// stability and the servo's memory across restarts (timing.Kept).
const stabilityFile = "stability.json"

// keepEvery is how often the measured stability is saved while it may be
// kept; it is saved at shutdown too. The sums change slowly: a save lost
// to a crash costs at most this much of measurement.
const keepEvery = 15 * time.Minute

// keptStability makes tcfg's discipline start from what an earlier run
// learnt of the oscillator, if it may. A file that may not be used is
// logged and left in place: the discipline then learns afresh, which
// costs holdover time, not correctness.
func keptStability(tcfg *timing.Config, stateDir string, now time.Time, log *slog.Logger) {
	path := filepath.Join(stateDir, stabilityFile)
	k, ok, err := timing.LoadKept(path, now)
	switch {
	case err != nil:
		log.Warn("kept oscillator stability not used; measuring it afresh", "err", err)
		return
	case !ok:
		return
	}
	k.Seed(tcfg)
	log.Info("oscillator stability restored", "path", path, "saved_at", k.SavedAt,
		"terms_1s", k.AllanTerms[0], "terms_2048s", k.AllanTerms[bound.Octaves-1], "frequency_blocks", len(k.FrequencyHistory), "servo_memory", k.Servo != nil)
}

// keepStability saves what the discipline learnt of the oscillator every
// keepEvery and when ctx ends, if it may be kept then: the discipline
// LOCKED with a fitted model, and GNSS trusted by the integrity checks
// (st nil: they are off). What was learnt against a GNSS the checks
// doubt would make a restarted node start from it. It returns after the
// last save.
func keepStability(ctx context.Context, stateDir string, disc *timing.Discipline, st func() *integrity.Status,
	now func() time.Time, log *slog.Logger) {
	path := filepath.Join(stateDir, stabilityFile)
	save := func() {
		ds := disc.Status()
		if ds.State != timing.Locked || !ds.StabilityFitted || !ds.Allan.Measured() {
			return
		}
		if s := st(); s != nil && s.State != integrity.StateTrusted {
			return
		}
		if err := timing.SaveKept(path, timing.NewKept(ds, now())); err != nil {
			log.Warn("could not keep the oscillator stability", "path", path, "err", err)
		}
	}
	t := time.NewTicker(keepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			save()
			return
		case <-t.C:
			save()
		}
	}
}
