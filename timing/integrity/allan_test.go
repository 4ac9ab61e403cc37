package integrity

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestStatForMatchesMonteCarlo checks the closed-form variance of the
// window statistic against simulated noise of each kind alone.
func TestStatForMatchesMonteCarlo(t *testing.T) {
	tests := []struct {
		name string
		p    PowerLaw
		tau  int
	}{
		{"white PM", PowerLaw{R: 1e6}, 8},
		{"white FM", PowerLaw{Qwf: 4}, 16},
		{"random walk FM", PowerLaw{Qrw: 0.01}, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			const trials = 20000
			n := 3 * tc.tau
			var sum2 float64
			x := make([]float64, n)
			for range trials {
				var phase, freq float64
				for i := range n {
					// Frequency steps before the phase advance, as the
					// weights' derivation assumes: x_i = Σ_{k<i} y_k.
					x[i] = phase + math.Sqrt(tc.p.R)*rng.NormFloat64()
					freq += math.Sqrt(tc.p.Qrw) * rng.NormFloat64()
					phase += freq + math.Sqrt(tc.p.Qwf)*rng.NormFloat64()
				}
				var m [3]float64
				for i, v := range x {
					m[i/tc.tau] += v / float64(tc.tau)
				}
				d := m[2] - 2*m[1] + m[0]
				sum2 += d * d
			}
			got := math.Sqrt(sum2 / trials)
			want := tc.p.statFor(tc.tau).sigma
			if tc.p.R > 0 {
				want /= math.Sqrt(medianInflation) // the simulation has no median filter
			}
			if math.Abs(got/want-1) > 0.05 {
				t.Fatalf("σ(D) simulated %.4g, closed form %.4g", got, want)
			}
		})
	}
}

func TestPowerLawADEV(t *testing.T) {
	p := PowerLaw{R: 1e6, Qwf: 0.01, Qrw: 2.5e-5}
	if got, want := p.ADEV(1), math.Sqrt(3e6+0.01+2.5e-5/3)*1e-9; math.Abs(got-want) > 1e-15 {
		t.Fatalf("ADEV(1) = %g, want %g", got, want)
	}
	if p.ADEV(0) != 0 {
		t.Fatal("ADEV(0) should be 0")
	}
	d := PowerLaw{DriftPPBPerS: 1e-3}
	if got, want := d.statFor(100).drift, 1e-3*100*100; got != want {
		t.Fatalf("drift allowance %g, want %g", got, want)
	}
}
