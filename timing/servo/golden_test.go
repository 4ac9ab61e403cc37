package servo_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/aunsorm/timenode/timing/servo"
)

//go:generate go run ../simbench/cmd/golden -dir testdata

// goldenStep mirrors simbench.GoldenStep; the test reads the files without
// importing the simulator, so a simulator change cannot mask a servo change.
type goldenStep struct {
	OffsetNs float64 `json:"offset_ns"`
	LocalNs  int64   `json:"local_ns"`
	TempC    float64 `json:"temp_c"`
	State    string  `json:"state"`
	FreqPPB  float64 `json:"freq_ppb"`
	StepNs   float64 `json:"step_ns"`
	Rejected bool    `json:"rejected,omitempty"`
}

// sameFloat compares with a relative tolerance of a few ulps: exact on
// amd64, and tolerant of fused multiply-add on arm64.
func sameFloat(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		file string
		alg  func() servo.Algorithm
		temp bool
	}{
		{"kalman_b", "golden_kalman_b.json", func() servo.Algorithm { return servo.NewKalman(servo.DefaultKalmanConfig()) }, true},
		{"kalman_c", "golden_kalman_c.json", func() servo.Algorithm { return servo.NewKalman(servo.DefaultKalmanConfig()) }, true},
		{"pi_c", "golden_pi_c.json", func() servo.Algorithm { return servo.NewPI() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var seq []goldenStep
			if err := json.Unmarshal(raw, &seq); err != nil {
				t.Fatal(err)
			}
			if len(seq) < 100 {
				t.Fatalf("golden sequence has %d steps, want at least 100", len(seq))
			}
			s := servo.New(servo.DefaultConfig(), tt.alg(), 0)
			for i, want := range seq {
				if tt.temp {
					s.SetTemperature(want.TempC)
				}
				got := s.Sample(want.OffsetNs, want.LocalNs)
				if got.State.String() != want.State || got.Rejected != want.Rejected ||
					!sameFloat(got.FreqPPB, want.FreqPPB) || !sameFloat(got.StepNs, want.StepNs) {
					t.Fatalf("step %d: got %+v (%s), want %+v", i, got, got.State, want)
				}
			}
		})
	}
}
