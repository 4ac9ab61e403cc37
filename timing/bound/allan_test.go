package bound

import (
	"math"
	"math/rand/v2"
	"testing"
)

// synth returns n seconds of free-running phase (ns) with white phase noise
// sigma (ns), white FM wf (ns/√s) and random-walk FM rw (ppb/√s).
func synth(seed uint64, n int, sigma, wf, rw float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 9))
	out := make([]float64, n)
	x, y := 0.0, 1234.0
	for k := range n {
		out[k] = x + sigma*rng.NormFloat64()
		x += y + wf*rng.NormFloat64()
		y += rw * rng.NormFloat64()
	}
	return out
}

func TestAllanPowerLaws(t *testing.T) {
	tests := []struct {
		name          string
		sigma, wf, rw float64
		octaves       []int
	}{
		{"white phase", 1000, 0, 0, []int{0, 3, 6}},
		{"white frequency", 0, 30, 0, []int{0, 3, 6}},
		// Per-second increments add q/(6τ) to the continuous-time qτ/3,
		// which only matters at the shortest τ.
		{"random-walk frequency", 0, 0, 0.3, []int{3, 6, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAllan()
			for k, p := range synth(1, 40000, tt.sigma, tt.wf, tt.rw) {
				a.Add(int64(k), p)
			}
			want := Noise{R: tt.sigma * tt.sigma, Qwf: tt.wf * tt.wf, Qrw: tt.rw * tt.rw}
			for _, m := range tt.octaves {
				got, ok := a.AVAR(m)
				if !ok {
					t.Fatalf("octave %d not backed by enough terms", m)
				}
				w := want.AVAR(float64(int64(1) << m))
				if r := got / w; r < 0.8 || r > 1.25 {
					t.Errorf("AVAR(τ=%d) = %.4g, model %.4g (ratio %.2f)", 1<<m, got, w, r)
				}
			}
		})
	}
}

func TestAllanFit(t *testing.T) {
	a := NewAllan()
	for k, p := range synth(2, 40000, 1000, 0, 0.05) {
		a.Add(int64(k), p)
	}
	n, ok := a.Fit()
	if !ok {
		t.Fatal("no fit")
	}
	if r := n.R / 1e6; r < 0.9 || r > 1.1 {
		t.Errorf("fitted R %.4g, want 1e6 ± 10 %%", n.R)
	}
	if r := n.Qrw / 0.0025; r < 0.3 || r > 3 {
		t.Errorf("fitted Qrw %.4g, want 0.0025 within a factor 3", n.Qrw)
	}
}

func TestAllanGaps(t *testing.T) {
	a := NewAllan()
	// Samples only on even seconds: no τ = 1 s term may be formed.
	for k, p := range synth(3, 2000, 1000, 0, 0) {
		if k%2 == 0 {
			a.Add(int64(k), p)
		}
	}
	if _, ok := a.AVAR(0); ok {
		t.Error("τ = 1 s variance formed across gaps")
	}
	if _, ok := a.AVAR(1); !ok {
		t.Error("τ = 2 s variance missing although every other second is present")
	}
	a.Reset()
	if _, ok := a.AVAR(1); ok {
		t.Error("statistics survive Reset")
	}
}

func TestInterpOctaves(t *testing.T) {
	pts := []float64{1, 2, 4, 8}
	tests := []struct {
		name string
		tau  float64
		want float64
	}{
		{"below 1 s holds", 0.5, 1},
		{"on an octave", 4, 4},
		{"log-log between", math.Sqrt(2), math.Sqrt(2)},
		{"beyond: slope 1", 16, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := interpOctaves(pts, tt.tau, 3); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("got %g, want %g", got, tt.want)
			}
		})
	}
	steep := []float64{1, 4, 16, 64}
	if got := interpOctaves(steep, 16, 3); math.Abs(got-256) > 1e-9 {
		t.Errorf("steep extrapolation %g, want 256 (slope capped at 2)", got)
	}
	flat := []float64{1, 1, 1, 1}
	if got := interpOctaves(flat, 16, 3); math.Abs(got-2) > 1e-9 {
		t.Errorf("flat extrapolation %g, want 2 (slope at least 1)", got)
	}
}
