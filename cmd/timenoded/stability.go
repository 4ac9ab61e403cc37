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
// stability across restarts (timing.Kept).
const stabilityFile = "stability.json"

// keepEvery is how often the measured stability is saved while it may be
// kept; it is saved at shutdown too. The sums change slowly: a save lost
// to a crash costs at most this much of measurement.
const keepEvery = 15 * time.Minute

// keptStability returns what an earlier run measured of the oscillator,
// for the discipline to start from; nil if nothing may be used. A file
// that may not seed it is logged and left in place: the discipline then
// measures afresh, which costs holdover time, not correctness.
func keptStability(stateDir string, now time.Time, log *slog.Logger) *bound.Stability {
	path := filepath.Join(stateDir, stabilityFile)
	s, ok, err := timing.LoadKept(path, now)
	switch {
	case err != nil:
		log.Warn("kept oscillator stability not used; measuring it afresh", "err", err)
		return nil
	case !ok:
		return nil
	}
	log.Info("oscillator stability restored", "path", path, "terms_1s", s.N[0], "terms_2048s", s.N[bound.Octaves-1])
	return &s
}

// keepStability saves the discipline's measured stability every keepEvery
// and when ctx ends, if it may be kept then: the discipline LOCKED with a
// fitted model, and GNSS trusted by the integrity checks (st nil: they
// are off). Sums measured against a GNSS the checks doubt would make a
// restarted node start from them. It returns after the last save.
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
		if err := timing.SaveKept(path, ds.Allan, now()); err != nil {
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
