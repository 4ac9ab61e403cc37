package netsvc

import (
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/timing"
)

type statusTiming struct{ st *timing.Status }

func (s statusTiming) Status() *timing.Status { return s.st }

// TestRoughtimeSource: Roughtime gets the bound the node publishes, grown
// to now, and nothing while the node is not servable.
func TestRoughtimeSource(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clk := clocktest.NewManual(t0.Add(10 * time.Second))
	for _, tc := range []struct {
		name      string
		st        timing.Status
		wantOK    bool
		wantBound time.Duration
	}{
		{"locked", timing.Status{State: timing.Locked, ErrorBound: 3200 * time.Nanosecond, BoundAsOf: t0}, true, 3200 * time.Nanosecond},
		{"holdover within policy, bound grown to now", timing.Status{State: timing.Holdover, ErrorBound: time.Microsecond,
			BoundAsOf: t0, BoundGrowthPPB: 100.5, MaxBound: time.Millisecond}, true, time.Microsecond + 1005*time.Nanosecond},
		{"holdover past policy", timing.Status{State: timing.Holdover, ErrorBound: 2 * time.Millisecond, BoundAsOf: t0, MaxBound: time.Millisecond}, false, 0},
		{"unsynchronized", timing.Status{State: timing.Unsynchronized}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			now, bound, ok := RoughtimeSource(clk, statusTiming{&st}).Now()
			if ok != tc.wantOK || (ok && bound != tc.wantBound) || !now.Equal(clk.Now()) {
				t.Fatalf("Now() = %v, %v, %v; want %v, %v, %v", now, bound, ok, clk.Now(), tc.wantBound, tc.wantOK)
			}
		})
	}
}
