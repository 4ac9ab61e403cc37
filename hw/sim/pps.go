package sim

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/pps"
)

// LocalClock is what the simulated PPS needs from the oscillator: the local
// reading at an exact true instant.
type LocalClock interface {
	LocalAt(t time.Time) time.Time
}

// PPSConfig describes the simulated pulse timestamps.
type PPSConfig struct {
	// Noise is the standard deviation of white timestamp noise.
	Noise time.Duration
	// Timeout is how long Fetch waits without an edge before ErrTimeout.
	Timeout time.Duration
	Seed    uint64
}

// PPS is a pps.Source whose edges happen at every true second and are
// timestamped by the simulated local clock, plus noise.
type PPS struct {
	cfg      PPSConfig
	ref      clock.Clock
	local    LocalClock
	rng      *rand.Rand
	seq      uint64
	last     time.Time
	disabled atomic.Bool
	pulses   atomic.Uint64
	missed   atomic.Uint64
}

// Stats counts pulses delivered and edges swallowed while disabled.
func (p *PPS) Stats() pps.Stats {
	return pps.Stats{Pulses: p.pulses.Load(), Missed: p.missed.Load()}
}

// NewPPS returns a simulated PPS source.
func NewPPS(ref clock.Clock, local LocalClock, cfg PPSConfig) *PPS {
	if cfg.Timeout == 0 {
		cfg.Timeout = 1500 * time.Millisecond
	}
	return &PPS{cfg: cfg, ref: ref, local: local, rng: rand.New(rand.NewPCG(cfg.Seed, 2))}
}

// SetEnabled turns the pulse on or off (off: as if the PPS line were cut).
func (p *PPS) SetEnabled(on bool) { p.disabled.Store(!on) }

// Fetch implements pps.Source.
func (p *PPS) Fetch(ctx context.Context) (pps.Pulse, error) {
	deadline := p.ref.Now().Add(p.cfg.Timeout)
	for {
		next := p.ref.Now().Truncate(time.Second).Add(time.Second)
		if !p.last.IsZero() && !next.After(p.last) {
			next = p.last.Add(time.Second)
		}
		if next.After(deadline) {
			if err := sleepUntil(ctx, p.ref, deadline); err != nil {
				return pps.Pulse{}, err
			}
			return pps.Pulse{}, pps.ErrTimeout
		}
		if err := sleepUntil(ctx, p.ref, next); err != nil {
			return pps.Pulse{}, err
		}
		p.seq++ // the sequence counts edges, seen or not, like the kernel's
		p.last = next
		if p.disabled.Load() {
			p.missed.Add(1)
			continue
		}
		p.pulses.Add(1)
		ts := p.local.LocalAt(next)
		if p.cfg.Noise > 0 {
			ts = ts.Add(time.Duration(p.rng.NormFloat64() * float64(p.cfg.Noise)))
		}
		return pps.Pulse{Local: ts, Seq: p.seq, Quality: pps.QualitySimulated}, nil
	}
}

// Close implements pps.Source.
func (p *PPS) Close() error { return nil }

var _ pps.Source = (*PPS)(nil)
