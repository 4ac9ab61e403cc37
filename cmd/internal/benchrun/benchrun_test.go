package benchrun

import (
	"slices"
	"testing"
	"time"
)

func TestSampleMergeAndFigures(t *testing.T) {
	a := Sample{Replies: 300, Lost: 1, Stray: 2, Bad: 0, CPUTicks: 50, GenCPU: time.Second, Elapsed: 2 * time.Second,
		RTTs: []time.Duration{10, 30, 50}}
	b := Sample{Replies: 100, Lost: 2, Stray: 0, Bad: 1, CPUTicks: 50, GenCPU: time.Second, Elapsed: 2 * time.Second,
		RTTs: []time.Duration{20, 40}}
	a.Merge(b)
	want := Sample{Replies: 400, Lost: 3, Stray: 2, Bad: 1, CPUTicks: 100, GenCPU: 2 * time.Second, Elapsed: 4 * time.Second,
		RTTs: []time.Duration{10, 20, 30, 40, 50}}
	if a.Replies != want.Replies || a.Lost != want.Lost || a.Stray != want.Stray || a.Bad != want.Bad ||
		a.CPUTicks != want.CPUTicks || a.GenCPU != want.GenCPU || a.Elapsed != want.Elapsed || !slices.Equal(a.RTTs, want.RTTs) {
		t.Fatalf("merged %+v, want %+v", a, want)
	}
	tests := []struct {
		name      string
		got, want float64
	}{
		{"replies/s", a.Rate(), 100},
		{"CPU seconds (100 ticks)", a.CPUSeconds(), 1},
		{"replies per CPU-second", a.PerCPUSecond(), 400},
		{"no time: no rate", Sample{Replies: 5}.Rate(), 0},
		{"no CPU ticks: no per-CPU figure", Sample{Replies: 5}.PerCPUSecond(), 0},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if got := a.Percentile(50); got != 30 {
		t.Errorf("median round trip %v, want 30ns", got)
	}
}
