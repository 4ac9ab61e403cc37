package integrity

import (
	"math"
	"testing"
	"time"
)

// TestWitnessDeparture: the witnesses' floor under the node's time error
// covers what a slow drag or a ramp moved the node, within 100 µs (their
// 40 µs jitter averaged over two 10 min windows), and says nothing
// for a node that did not move, whose witnesses are too few, or whose
// history is too short.
func TestWitnessDeparture(t *testing.T) {
	drag := func(rate float64, onsetAgo time.Duration) func(time.Duration) float64 {
		return func(ago time.Duration) float64 { return rate * max(0, (onsetAgo-ago).Seconds()) }
	}
	// The integrity bench's slow ramp, 4.16 h in, when the PPS check
	// caught it on kernel PPS 112 µs off.
	ramp := func(ago time.Duration) float64 {
		s := max(0, (4*time.Hour + 10*time.Minute - ago).Seconds())
		return 0.5e-3 * s * s
	}
	tests := []struct {
		name    string
		span    time.Duration
		nodeErr func(time.Duration) float64
		only    map[string]bool // nil: all three witnesses
		ok      bool
	}{
		{"clean", 4 * time.Hour, func(time.Duration) float64 { return 0 }, nil, false},
		{"clean, 25 min of history", 25 * time.Minute, func(time.Duration) float64 { return 0 }, nil, false},
		{"drag 10 ns/s for 3 h", 4 * time.Hour, drag(10, 3*time.Hour), nil, true},
		{"drag 30 ns/s for 1 h", 4 * time.Hour, drag(30, time.Hour), nil, true},
		{"drag 30 ns/s the other way", 4 * time.Hour, drag(-30, time.Hour), nil, true},
		{"ramp 1e-3 ns/s², older than the history", 4 * time.Hour, ramp, nil, true},
		{"too short a history", 19 * time.Minute, drag(1000, 10*time.Minute), nil, false},
		{"one witness", 4 * time.Hour, drag(100, time.Hour), map[string]bool{"w2": true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			moved := 0
			for seed := uint64(1); seed <= 20; seed++ {
				var hist []Measurement
				for _, m := range witnessHistory(tt.span, seed, tt.nodeErr) {
					if tt.only == nil || tt.only[m.Witness] {
						hist = append(hist, m)
					}
				}
				d, measured := WitnessDeparture(t0, hist)
				floor, ok := d.Floor()
				truth := math.Abs(tt.nodeErr(0)) // the node's error now
				// Measured whenever two witnesses span both windows.
				if measured != (tt.only == nil && tt.span >= 2*departWindow) {
					t.Errorf("seed %d: measured %v over %v (%d witnesses asked, 0: all three)", seed, measured, tt.span, len(tt.only))
				}
				if !ok {
					if tt.ok {
						t.Errorf("seed %d: no floor for a node %.0f ns off", seed, truth)
					}
					continue
				}
				moved++
				if !tt.ok {
					t.Errorf("seed %d: floor %v for a node that did not move (or could not be judged)", seed, floor)
					continue
				}
				// Covered, and by not much more than the averaging
				// leaves: 3 standard errors of about 18 µs (10
				// measurements per witness and window).
				if float64(floor) < truth || float64(floor) > truth+100e3 {
					t.Errorf("seed %d: floor %v for a node %.0f ns off", seed, floor, truth)
				}
				// Move and rate are the node's, signed as its error.
				if d.Rate*tt.nodeErr(0) <= 0 || float64(d.Move)*tt.nodeErr(0) <= 0 {
					t.Errorf("seed %d: move %v at %.3g ns/s for a node moving to %.0f ns", seed, d.Move, d.Rate, tt.nodeErr(0))
				}
			}
			t.Logf("a floor in %d of 20 seeds", moved)
		})
	}
}

// TestWitnessDepartureIgnoresOneRerouted: one witness whose path changed
// (its offset stepped 500 µs) moves the median no more than the other
// two do.
func TestWitnessDepartureIgnoresOneRerouted(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		hist := witnessHistory(4*time.Hour, seed, func(time.Duration) float64 { return 0 })
		for i := range hist {
			if hist[i].Witness == "w3" && t0.Sub(hist[i].At) < time.Hour {
				hist[i].Offset += 500 * time.Microsecond
			}
		}
		d, _ := WitnessDeparture(t0, hist)
		if floor, ok := d.Floor(); ok {
			t.Errorf("seed %d: floor %v from one rerouted witness (move %v)", seed, floor, d.Move)
		}
	}
}

// TestPolicyResidualTakesTheWitnessFloor: a move to untrusted keeps the
// witnesses' floor, grown at their rate, as the residual when it is
// larger than what the evidence measured, and forgets a stale one.
func TestPolicyResidualTakesTheWitnessFloor(t *testing.T) {
	ppsAlarm := func(at time.Time) Evidence {
		return Evidence{At: at, Detector: DetectorPPS, Reason: "frequency_change", Level: LevelUntrusted,
			Values: map[string]float64{"held_error_ns": 60e3, "node_error_ns": 50e3, "allowed_ns": 17e3}}
	}
	tests := []struct {
		name string
		age  time.Duration // of the floor at the alarm
		want time.Duration
	}{
		{"fresh floor, grown at 15 ns/s", 100 * time.Second, 130*time.Microsecond + 1500*time.Nanosecond},
		{"stale floor", 11 * time.Minute, 67 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPolicy(PolicyConfig{}, t0)
			// A floor of 100 + 3·10 µs, the node moving 15 ns/s.
			p.MeasureWitnesses(Departure{At: t0, Move: 100 * time.Microsecond, StdErr: 10 * time.Microsecond, Rate: 15, Witnesses: 3})
			at := t0.Add(tt.age)
			p.Observe(ppsAlarm(at))
			if tr, ok := p.Evaluate(at); !ok || tr.To != StateUntrusted {
				t.Fatalf("no move to untrusted: %+v", tr)
			}
			if got := p.Residual(); got != tt.want {
				t.Errorf("residual %v, want %v", got, tt.want)
			}
		})
	}
}
