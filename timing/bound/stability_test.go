package bound

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// feed gives e seconds of a clock with white FM and random-walk noise
// under 1 µs timestamps, from second from on, corrected exactly.
func feed(e *Estimator, rng *rand.Rand, from, seconds int) {
	var x, y float64
	for k := from; k < from+seconds; k++ {
		y += 0.05 * rng.NormFloat64() // random walk, ppb
		x += y + 0.1*rng.NormFloat64()
		e.AddSample(int64(k)*1e9, x+1e3*rng.NormFloat64(), 0)
	}
}

// TestSeedStability: a restarted estimator seeded with what its
// predecessor measured fits the same noise model before its first
// sample, takes the predecessor's holdover growth from its first minute
// instead of the prior's, and adds its own terms to the seeded ones.
func TestSeedStability(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	old := NewEstimator(DefaultConfig())
	feed(old, rng, 0, 6*3600)
	kept := old.Stability()
	if !kept.Measured() {
		t.Fatal("six hours of samples measured no octave")
	}
	want, ok := old.Noise()
	if !ok {
		t.Fatal("six hours of samples fitted no noise model")
	}

	seeded, fresh := NewEstimator(DefaultConfig()), NewEstimator(DefaultConfig())
	if err := seeded.SeedStability(kept); err != nil {
		t.Fatal(err)
	}
	got, ok := seeded.Noise()
	if !ok || got != want {
		t.Fatalf("seeded noise %+v (fitted %v), want the predecessor's %+v", got, ok, want)
	}
	if _, ok := fresh.Noise(); ok {
		t.Fatal("an estimator with neither samples nor seed claims a fitted model")
	}
	rng2 := rand.New(rand.NewPCG(4, 4))
	feed(seeded, rng2, 0, 60)
	rng2 = rand.New(rand.NewPCG(4, 4))
	feed(fresh, rng2, 0, 60)
	// An hour of holdover after one minute of samples: the seeded bound
	// grows as the measured oscillator does, the fresh one as the prior.
	at := int64(60+3600) * 1e9
	_, sSeeded, _ := seeded.Offset(at)
	_, sFresh, _ := fresh.Offset(at)
	if sSeeded*10 > sFresh {
		t.Errorf("an hour into holdover after a minute of samples: σ %.0f ns seeded, %.0f ns fresh; want the seeded one far smaller", sSeeded, sFresh)
	}
	t.Logf("σ an hour into holdover after a minute: %.0f ns seeded, %.0f ns fresh", sSeeded, sFresh)
	// 60 samples make 58 terms at τ = 1 s, on top of the seeded ones.
	n := kept.N[0]
	for range 58 {
		if n++; n >= maxTerms {
			n /= 2
		}
	}
	if st := seeded.Stability(); st.N[0] != n {
		t.Errorf("the seeded accumulator's 1 s count went %v → %v, want %v: new terms are not added to the seeded ones", kept.N[0], st.N[0], n)
	}
	if err := seeded.SeedStability(kept); err == nil {
		t.Error("seeding after the first sample was accepted")
	}
}

func TestStabilityValidate(t *testing.T) {
	good := Stability{}
	good.Sum[0], good.N[0] = 3, 100
	tests := []struct {
		name string
		edit func(*Stability)
		want string // "" valid
	}{
		{"measured sums", func(*Stability) {}, ""},
		{"empty", func(s *Stability) { *s = Stability{} }, ""},
		{"NaN sum", func(s *Stability) { s.Sum[3] = math.NaN() }, "octave 3 (τ = 8 s)"},
		{"infinite count", func(s *Stability) { s.N[11] = math.Inf(1) }, "octave 11"},
		{"negative sum", func(s *Stability) { s.Sum[0] = -1 }, "negative"},
		{"count past the cap", func(s *Stability) { s.N[0] = maxTerms }, "more than the accumulator keeps"},
		{"sum without terms", func(s *Stability) { s.Sum[5] = 1 }, "without terms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.edit(&s)
			err := s.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate: %v, want an error mentioning %q", err, tt.want)
			}
			if tt.want != "" {
				if err := NewEstimator(DefaultConfig()).SeedStability(s); err == nil {
					t.Error("SeedStability accepted what Validate refuses")
				}
			}
		})
	}
}
