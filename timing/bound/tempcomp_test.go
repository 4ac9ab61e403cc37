package bound

import (
	"math"
	"testing"
)

func TestTempComp(t *testing.T) {
	tests := []struct {
		name   string
		temp   func(k int) float64
		slope  float64
		wantOK bool
	}{
		{"learns the slope", func(k int) float64 { return 25 + 2*math.Sin(float64(k)/300) }, -120, true},
		{"constant temperature: no fit", func(int) float64 { return 25 }, -120, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c TempComp
			for k := range 5000 {
				tc := tt.temp(k)
				c.Add(tc, 4000+tt.slope*(tc-25)+math.Sin(float64(k)))
			}
			got, ok := c.Coefficient()
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if ok && math.Abs(got-tt.slope) > 1 {
				t.Errorf("coefficient %.2f, want %.0f ± 1", got, tt.slope)
			}
			held := c.Correct(4000, 25, 27)
			want := 4000.0
			if ok {
				want = 4000 + 2*got
			}
			if held != want {
				t.Errorf("Correct = %g, want %g", held, want)
			}
		})
	}
}

func TestPhaseFilterTracksRamp(t *testing.T) {
	f := PhaseFilter{R: 1, Qrw: 1e-6}
	f.Init(0, 1e3, 0, 1e3)
	for k := 1; k <= 100; k++ {
		f.Predict(1, 0)
		f.Update(37 * float64(k))
	}
	if math.Abs(f.Y-37) > 0.01 || math.Abs(f.X-3700) > 0.1 {
		t.Errorf("state (%g, %g), want (3700, 37)", f.X, f.Y)
	}
	x, v := f.Project(10, 5)
	if math.Abs(x-(f.X+370+5)) > 1e-9 || v <= f.Pxx {
		t.Errorf("projection (%g, %g) inconsistent with state (%g, %g)", x, v, f.X, f.Pxx)
	}
}
