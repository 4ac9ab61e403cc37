package sim

import (
	"context"
	"math/rand/v2"
	"sync"
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

	// The GNSS time error an attacker imposes: phaseNs at dragFrom,
	// moving at dragNsPerS since (true time).
	mu         sync.Mutex
	phaseNs    float64
	dragNsPerS float64
	dragFrom   time.Time
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

// Shift moves the edges by d from now on, on top of any shift so far:
// a time push (d > 0, edges late) or pull (d < 0).
func (p *PPS) Shift(d time.Duration) {
	now := p.ref.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phaseNs = p.phaseAt(now) + float64(d)
	p.dragFrom = now
}

// Drag makes the edges drift by nsPerS nanoseconds per second from now
// on, the offset reached so far kept (0 stops the drift where it is).
func (p *PPS) Drag(nsPerS float64) {
	now := p.ref.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phaseNs, p.dragFrom, p.dragNsPerS = p.phaseAt(now), now, nsPerS
}

// Reset removes every shift and drift: the edges are on time again.
func (p *PPS) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phaseNs, p.dragNsPerS, p.dragFrom = 0, 0, time.Time{}
}

// Phase returns how late the edges are at true time t.
func (p *PPS) Phase(t time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Duration(p.phaseAt(t))
}

// phaseAt is the imposed error at t; callers hold mu.
func (p *PPS) phaseAt(t time.Time) float64 {
	if p.dragFrom.IsZero() {
		return p.phaseNs
	}
	return p.phaseNs + p.dragNsPerS*t.Sub(p.dragFrom).Seconds()
}

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
		// An attacker's edge comes when its time says the second is.
		edge := next.Add(p.Phase(next))
		if edge.After(next) {
			if err := sleepUntil(ctx, p.ref, edge); err != nil {
				return pps.Pulse{}, err
			}
		}
		ts := p.local.LocalAt(edge)
		if p.cfg.Noise > 0 {
			ts = ts.Add(time.Duration(p.rng.NormFloat64() * float64(p.cfg.Noise)))
		}
		return pps.Pulse{Local: ts, Seq: p.seq, Quality: pps.QualitySimulated}, nil
	}
}

// Close implements pps.Source.
func (p *PPS) Close() error { return nil }

var _ pps.Source = (*PPS)(nil)
