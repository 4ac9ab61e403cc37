package timing

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/timing/leap"
)

// TestSetLeapReplacesTheSchedule: a reload's fresh list clears "expired"
// at the next tick, and the kernel hears TAI−UTC from it; nil forgets it.
func TestSetLeapReplacesTheSchedule(t *testing.T) {
	list, err := os.ReadFile("leap/testdata/leap-seconds.list")
	if err != nil {
		t.Fatal(err)
	}
	old, err := leap.Parse(list)
	if err != nil {
		t.Fatal(err)
	}
	now := old.Expires.Add(30 * 24 * time.Hour)
	fresh := *old
	fresh.Updated, fresh.Expires = now.Add(-24*time.Hour), now.Add(180*24*time.Hour)
	osc := clocktest.NewOscillator(clocktest.NewManual(now), clocktest.OscillatorConfig{})
	cfg := DefaultConfig()
	cfg.Leap = old
	d := New(cfg, osc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.Tick()
	if !d.Status().LeapListExpired {
		t.Fatal("the old list is not expired")
	}
	d.SetLeap(&fresh)
	if d.Leap() != &fresh {
		t.Fatal("Leap does not return the new schedule")
	}
	d.Tick()
	if st := d.Status(); st.LeapListExpired || st.TAIOffset != 37 {
		t.Fatalf("after SetLeap: expired %v, TAI %d; want false, 37", st.LeapListExpired, st.TAIOffset)
	}
	d.SetLeap(nil)
	d.Tick()
	if st := d.Status(); st.LeapListExpired || st.TAIOffset != 0 {
		t.Fatalf("after SetLeap(nil): expired %v, TAI %d; want false, 0", st.LeapListExpired, st.TAIOffset)
	}
}
