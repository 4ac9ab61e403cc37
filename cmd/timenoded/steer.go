package main

import (
	"sync"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

// steerLog is the disciplined clock with a record of how the discipline
// steered it: the sum of its steps and the integral of its frequency
// corrections. Subtracted from a PPS timestamp, that gives the pulse's
// phase against the free-running oscillator, which is what the PPS
// integrity check needs: the discipline's own offsets follow a spoofer
// that drags time slowly, the free-running phase does not.
type steerLog struct {
	clock.Steerable
	mu   sync.Mutex
	segs []steerSeg // oldest first
	gen  uint64     // steps so far: a step breaks the phase history
	// origin is where the log starts (correction 0) and originPPB the
	// clock's frequency then, as whatever ran before left it.
	origin    time.Time
	originPPB float64
	// overlaps are the last backward steps' doubled readings, newest
	// last (Overlaps).
	overlaps []stepOverlap
}

// stepOverlap is the span of local readings a backward step made occur
// twice, [from, to), and the generation the step began.
type stepOverlap struct {
	gen      uint64
	from, to time.Time
}

// maxOverlaps is how many backward steps' spans are kept: a pulse is
// looked up within a second or two of its edge.
const maxOverlaps = 8

// steerSeg is a span of constant frequency correction starting at local
// time from, with the correction accumulated up to from.
type steerSeg struct {
	from time.Time
	base float64 // ns
	ppb  float64
}

// maxSegs is how much steering history is kept: a pulse is looked up
// within a second or two of its edge, and the discipline changes the
// frequency about once a second and on ticks.
const maxSegs = 64

func newSteerLog(c clock.Steerable) *steerLog {
	f, err := c.Frequency()
	if err != nil {
		f = 0
	}
	now := c.Now()
	return &steerLog{Steerable: c, segs: []steerSeg{{from: now, ppb: f}}, origin: now, originPPB: f}
}

// Origin returns the local time the log starts from, where the
// correction is 0, and the frequency the clock ran at then.
func (s *steerLog) Origin() (time.Time, float64) { return s.origin, s.originPPB }

// ClockID implements clock.Identified for the clock it wraps, so that
// the discipline can tell whether a kept frequency was measured on it.
func (s *steerLog) ClockID() (string, error) {
	if c, ok := s.Steerable.(clock.Identified); ok {
		return c.ClockID()
	}
	return "", clock.ErrNoIdentity
}

// SetFrequency implements clock.Steerable and records the change.
func (s *steerLog) SetFrequency(ppb float64) error {
	if err := s.Steerable.SetFrequency(ppb); err != nil {
		return err
	}
	now := s.Steerable.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(steerSeg{from: now, base: s.at(now), ppb: ppb})
	return nil
}

// Step implements clock.Steerable and records the step.
func (s *steerLog) Step(d time.Duration) error {
	before := s.Steerable.Now()
	if err := s.Steerable.Step(d); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.segs[len(s.segs)-1]
	s.add(steerSeg{from: before.Add(d), base: s.at(before) + float64(d), ppb: last.ppb})
	s.gen++
	if d < 0 {
		s.overlaps = append(s.overlaps, stepOverlap{gen: s.gen, from: before.Add(d), to: before})
		if len(s.overlaps) > maxOverlaps {
			s.overlaps = s.overlaps[1:]
		}
	}
	return nil
}

// Overlaps reports whether local time t lies where a backward step made
// after generation gen left readings that occur twice: a timestamp there
// may have been taken on either side of the step, and Correction takes it
// for one taken after. Readings elsewhere are unambiguous: before a step
// forward, the clock never read what it reads after it.
func (s *steerLog) Overlaps(t time.Time, gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.overlaps {
		if o.gen > gen && !t.Before(o.from) && t.Before(o.to) {
			return true
		}
	}
	return false
}

func (s *steerLog) add(seg steerSeg) {
	s.segs = append(s.segs, seg)
	if len(s.segs) > maxSegs {
		s.segs = s.segs[len(s.segs)-maxSegs:]
	}
}

// at is the correction at local time t; callers hold mu.
func (s *steerLog) at(t time.Time) float64 {
	i := len(s.segs) - 1
	for i > 0 && t.Before(s.segs[i].from) {
		i--
	}
	seg := s.segs[i]
	return seg.base + seg.ppb*float64(t.Sub(seg.from))*1e-9
}

// Correction returns how far the steering has moved the clock's reading
// at local time t (ns, steps included), and the step generation: values
// from different generations are not comparable, because local times
// before a step overlap those after it.
func (s *steerLog) Correction(t time.Time) (float64, uint64) {
	corr, _, gen := s.Steering(t)
	return corr, gen
}

// Steering returns Correction's two values and the frequency correction
// the steering set last (ppb), which the clock runs at until the next.
func (s *steerLog) Steering(t time.Time) (corr, ppb float64, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at(t), s.segs[len(s.segs)-1].ppb, s.gen
}
