package timing

import (
	"math"
	"testing"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/timing/servo"
)

// fakeLaw is a control law with a fixed output and a holdover frequency
// that follows the temperature input, so that tests can tell which of the
// two the discipline applied.
type fakeLaw struct {
	out, perC, temp float64
}

func (f *fakeLaw) Sample(float64, int64) float64 { return f.out }
func (f *fakeLaw) Reset(float64)                 {}
func (f *fakeLaw) HoldoverFrequency() float64    { return f.perC * f.temp }
func (f *fakeLaw) SetTemperature(c float64)      { f.temp = c }

var (
	_ servo.Holder    = (*fakeLaw)(nil)
	_ servo.TempInput = (*fakeLaw)(nil)
)

// TestServoContract: the discipline applies the servo's output for one
// second at most, then its holdover frequency, which follows the
// temperature input while the clock holds; a missed pulse is enough.
func TestServoContract(t *testing.T) {
	tests := []struct {
		name     string
		temp     bool
		missed   int     // pulses missed after lock
		dTemp    float64 // temperature change (°C) over the missed seconds
		wantFreq float64 // clock frequency at the end
	}{
		{"pulses arrive: the output runs", true, 0, 0, 777},
		{"one missed pulse: hold", true, 1, 0, 30},
		{"outage: hold follows the temperature", true, 5, 10, 130},
		{"no temperature input: hold without it", false, 5, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			law := &fakeLaw{out: 777, perC: 10}
			cfg := DefaultConfig()
			cfg.Servo = func() servo.Algorithm { return law }
			b := newBenchConfig(t, cfg, clocktest.OscillatorConfig{}, 0)
			temp := 3.0
			for range 20 {
				if tt.temp {
					b.d.SetTemperature(temp)
				}
				b.second(true, true, true)
			}
			for range tt.missed {
				if tt.temp {
					temp += tt.dTemp / float64(tt.missed)
					b.d.SetTemperature(temp)
				}
				b.second(false, true, true)
			}
			got, err := b.osc.Frequency()
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tt.wantFreq) > 1e-9 {
				t.Errorf("clock frequency %g ppb, want %g", got, tt.wantFreq)
			}
		})
	}
}
