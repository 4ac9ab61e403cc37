package servo_test

import (
	"math/rand/v2"
	"testing"

	"github.com/aunsorm/timenode/timing/servo"
)

// BenchmarkSample measures the CPU cost of one sample, policy included.
func BenchmarkSample(b *testing.B) {
	algs := []struct {
		name string
		alg  func() servo.Algorithm
	}{
		{"kalman", func() servo.Algorithm { return servo.NewKalman(servo.DefaultKalmanConfig()) }},
		{"pi", func() servo.Algorithm { return servo.NewPI() }},
	}
	for _, a := range algs {
		b.Run(a.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			s := servo.New(servo.DefaultConfig(), a.alg(), 0)
			x := 0.0
			k := int64(0)
			for b.Loop() {
				out := s.Sample(x+1e3*rng.NormFloat64(), k*1e9)
				x += 2e3 + out.FreqPPB
				k++
			}
		})
	}
}
