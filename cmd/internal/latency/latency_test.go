package latency

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"min", ten, 0, 1},
		{"median", ten, 50, 5},
		{"p90", ten, 90, 9},
		{"p99 of ten is the largest", ten, 99, 10},
		{"max", ten, 100, 10},
		{"one sample", []time.Duration{7}, 99, 7},
		{"none", nil, 50, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.samples, tc.p); got != tc.want {
				t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}
