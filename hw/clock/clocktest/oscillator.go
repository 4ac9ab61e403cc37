package clocktest

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

// OscillatorConfig describes the simulated oscillator.
type OscillatorConfig struct {
	// InitialOffset is the local clock's error against true time at start.
	InitialOffset time.Duration
	// FrequencyErrorPPB is the oscillator's intrinsic frequency error.
	FrequencyErrorPPB float64
	// WanderPPB is the random-walk frequency noise, in ppb per sqrt(second).
	WanderPPB float64
	// Seed makes the wander reproducible.
	Seed uint64
}

// Oscillator is a simulated local clock. Its reading advances at
// (1 + y) times the rate of the reference clock, where y is the intrinsic
// frequency error plus wander plus the correction a servo applied. It
// implements clock.Steerable and never touches the host clock.
type Oscillator struct {
	ref clock.Clock // "true" time

	mu         sync.Mutex
	anchorTrue time.Time // reference reading at the last advance
	anchorLoc  int64     // local reading (Unix ns) at anchorTrue
	intrinsic  float64   // ppb
	wander     float64   // ppb, random walk
	wanderStep float64   // ppb per sqrt(s)
	corr       float64   // ppb, set by SetFrequency
	rng        *rand.Rand
	sync       clock.SyncStatus
	steps      int
}

// NewOscillator starts a simulated oscillator against the reference clock.
func NewOscillator(ref clock.Clock, cfg OscillatorConfig) *Oscillator {
	now := ref.Now().Round(0)
	return &Oscillator{
		ref:        ref,
		anchorTrue: now,
		anchorLoc:  now.UnixNano() + int64(cfg.InitialOffset),
		intrinsic:  cfg.FrequencyErrorPPB,
		wanderStep: cfg.WanderPPB,
		rng:        rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
	}
}

// advance moves the anchor to true time t (t may be slightly in the past
// of the anchor, in which case the reading is extrapolated backwards and
// the anchor is left alone). Callers hold mu.
//
// Only the wall part of t counts: the reference's readings arrive both with
// a monotonic part (Now) and without (an edge time made by Truncate), and
// Go's Sub takes the monotonic difference when both have one, so mixing
// them made the local clock slip by any step of the host's wall clock.
func (o *Oscillator) advance(t time.Time) int64 {
	t = t.Round(0)
	dt := t.Sub(o.anchorTrue)
	y := (o.intrinsic + o.wander + o.corr) * 1e-9
	loc := o.anchorLoc + int64(math.Round(float64(dt)*(1+y)))
	if dt <= 0 {
		return loc
	}
	if o.wanderStep > 0 {
		o.wander += o.wanderStep * math.Sqrt(dt.Seconds()) * o.rng.NormFloat64()
	}
	o.anchorTrue, o.anchorLoc = t, loc
	return loc
}

// Now returns the local (simulated) clock reading.
func (o *Oscillator) Now() time.Time { return o.LocalAt(o.ref.Now()) }

// LocalAt returns what the local clock read at reference time t. The
// simulated PPS uses it to timestamp an edge that happened exactly at a
// true second, independent of how late the goroutine woke up.
func (o *Oscillator) LocalAt(t time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return time.Unix(0, o.advance(t)).UTC()
}

// TrueOffset is local minus true time now: the error the discipline is
// trying to remove, known exactly only in simulation.
func (o *Oscillator) TrueOffset() time.Duration {
	t := o.ref.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	return time.Duration(o.advance(t) - t.UnixNano())
}

// SetFrequency implements clock.Steerable.
func (o *Oscillator) SetFrequency(ppb float64) error {
	t := o.ref.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.advance(t)
	o.corr = ppb
	return nil
}

// Frequency implements clock.Steerable.
func (o *Oscillator) Frequency() (float64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.corr, nil
}

// Step implements clock.Steerable.
func (o *Oscillator) Step(d time.Duration) error {
	t := o.ref.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.advance(t)
	o.anchorLoc += int64(d)
	o.steps++
	return nil
}

// SetSync implements clock.Steerable; the status is kept for inspection.
func (o *Oscillator) SetSync(s clock.SyncStatus) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sync = s
	return nil
}

// Sync returns the last status set with SetSync.
func (o *Oscillator) Sync() clock.SyncStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sync
}

// Steps counts the steps applied so far.
func (o *Oscillator) Steps() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.steps
}

// NaturalFrequencyPPB is the oscillator's own frequency error now
// (intrinsic plus wander), without the servo's correction.
func (o *Oscillator) NaturalFrequencyPPB() float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.intrinsic + o.wander
}

var _ clock.Steerable = (*Oscillator)(nil)
