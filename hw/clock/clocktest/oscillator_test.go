package clocktest

import (
	"math"
	"testing"
	"time"
)

var epoch = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestOscillatorFrequencyAndSteering(t *testing.T) {
	tests := []struct {
		name      string
		offset    time.Duration
		freqPPB   float64
		corrPPB   float64
		step      time.Duration
		elapsed   time.Duration
		wantError time.Duration
	}{
		{"perfect", 0, 0, 0, 0, 100 * time.Second, 0},
		{"initial offset kept", 5 * time.Millisecond, 0, 0, 0, time.Hour, 5 * time.Millisecond},
		{"10 ppm fast gains 1 ms in 100 s", 0, 10000, 0, 0, 100 * time.Second, time.Millisecond},
		{"correction cancels error", 0, 10000, -10000, 0, time.Hour, 0},
		{"step removes offset", 3 * time.Millisecond, 0, 0, -3 * time.Millisecond, time.Minute, 0},
		{"slow clock", 0, -2000, 0, 0, 1000 * time.Second, -2 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := NewManual(epoch)
			o := NewOscillator(ref, OscillatorConfig{InitialOffset: tc.offset, FrequencyErrorPPB: tc.freqPPB})
			if err := o.SetFrequency(tc.corrPPB); err != nil {
				t.Fatal(err)
			}
			if err := o.Step(tc.step); err != nil {
				t.Fatal(err)
			}
			ref.Advance(tc.elapsed)
			got := o.TrueOffset()
			if d := got - tc.wantError; d < -time.Microsecond || d > time.Microsecond {
				t.Fatalf("true offset %v, want %v", got, tc.wantError)
			}
			if got2 := o.Now().Sub(ref.Now()); got2 != got {
				t.Fatalf("Now disagrees with TrueOffset: %v vs %v", got2, got)
			}
		})
	}
}

func TestOscillatorLocalAtPastIsExtrapolated(t *testing.T) {
	ref := NewManual(epoch)
	o := NewOscillator(ref, OscillatorConfig{FrequencyErrorPPB: 1e6}) // 1000 ppm
	ref.Advance(10 * time.Second)
	_ = o.Now()
	got := o.LocalAt(epoch.Add(9 * time.Second)).Sub(epoch)
	want := 9*time.Second + 9*time.Millisecond
	if got != want {
		t.Fatalf("LocalAt(past) = %v, want %v", got, want)
	}
}

func TestOscillatorWanderIsRandomWalk(t *testing.T) {
	ref := NewManual(epoch)
	o := NewOscillator(ref, OscillatorConfig{WanderPPB: 1, Seed: 7})
	var sumSq float64
	const n = 4000
	for i := 0; i < n; i++ {
		ref.Advance(time.Second)
		_ = o.Now()
	}
	w := o.NaturalFrequencyPPB()
	sumSq = w * w
	// After n one-second steps of 1 ppb/sqrt(s) the walk's sigma is sqrt(n).
	if sigma := math.Sqrt(n); sumSq == 0 || math.Abs(w) > 5*sigma {
		t.Fatalf("wander %v ppb after %d s, want nonzero and within 5 sigma (%v)", w, n, sigma)
	}
}
