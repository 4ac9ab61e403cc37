package sim

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

// ReceiverConfig describes when and what the simulated receiver sends.
type ReceiverConfig struct {
	// Delay after the true second at which the epoch's sentences start
	// (real receivers: 50-900 ms), and uniform jitter added to it.
	Delay, Jitter time.Duration
	Position      Position
	Seed          uint64
}

// Receiver writes one epoch of NMEA per true second into W.
type Receiver struct {
	cfg    ReceiverConfig
	ref    clock.Clock
	w      io.Writer
	rng    *rand.Rand
	noFix  atomic.Bool
	silent atomic.Bool

	mu     sync.Mutex
	faults Faults
	moved  [3]float64 // east, north, up metres: a spoofer's position
}

// NewReceiver returns a receiver that writes to w, timed by the reference
// clock ref (true time).
func NewReceiver(w io.Writer, ref clock.Clock, cfg ReceiverConfig) *Receiver {
	return &Receiver{cfg: cfg, ref: ref, w: w, rng: rand.New(rand.NewPCG(cfg.Seed, 1))}
}

// SetFix makes the receiver report a valid fix (true, the default) or
// none, as if the antenna cable were cut: nothing tracked, and the
// antenna supervisor reports OPEN (OK again when the fix returns).
func (r *Receiver) SetFix(valid bool) { r.noFix.Store(!valid) }

// SetSilent stops (true) or resumes the sentence stream, as if the antenna
// cable or the serial line were cut.
func (r *Receiver) SetSilent(silent bool) { r.silent.Store(silent) }

// SetFaults injects faults into every epoch from the next one on; the
// zero Faults is a healthy receiver.
func (r *Receiver) SetFaults(f Faults) {
	r.mu.Lock()
	r.faults = f
	r.mu.Unlock()
}

// Faults returns the faults being injected.
func (r *Receiver) Faults() Faults {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.faults
}

// MovePosition makes the reported position east, north and up metres
// from the antenna's (a spoofer that does not know where the antenna
// is); all zero reports the antenna's own again.
func (r *Receiver) MovePosition(east, north, up float64) {
	r.mu.Lock()
	r.moved = [3]float64{east, north, up}
	r.mu.Unlock()
}

// position is the position to report: the antenna's, moved.
func (r *Receiver) position() (Position, Faults) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.cfg.Position
	const metresPerDegree = 111320.0 // along a meridian; good to 1 % for a jump
	p.Lat += r.moved[1] / metresPerDegree
	p.Lon += r.moved[0] / (metresPerDegree * math.Cos(p.Lat*math.Pi/180))
	p.Alt += r.moved[2]
	return p, r.faults
}

// Run writes epochs until ctx is done or a write fails. The antenna
// report comes before the first epoch and whenever the fix changes, as a
// u-blox receiver sends it at start and on change.
func (r *Receiver) Run(ctx context.Context) error {
	reported, antennaOK := false, false
	for {
		now := r.ref.Now()
		sec := now.Truncate(time.Second).Add(time.Second)
		delay := r.cfg.Delay
		if r.cfg.Jitter > 0 {
			delay += time.Duration(r.rng.Int64N(int64(r.cfg.Jitter)))
		}
		if err := sleepUntil(ctx, r.ref, sec.Add(delay)); err != nil {
			return nil
		}
		if r.silent.Load() {
			continue
		}
		valid := !r.noFix.Load()
		var b []byte
		if !reported || valid != antennaOK {
			b = Antenna(valid)
			reported, antennaOK = true, valid
		}
		pos, faults := r.position()
		if _, err := r.w.Write(append(b, EpochWith(sec, pos, valid, faults)...)); err != nil {
			return fmt.Errorf("sim: write nmea: %w", err)
		}
	}
}

// sleepUntil waits until the reference clock reads t, or ctx is done.
func sleepUntil(ctx context.Context, ref clock.Clock, t time.Time) error {
	d := t.Sub(ref.Now())
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
