//go:build linux

package qemutest

import (
	"math"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"golang.org/x/sys/unix"
)

// freqUnitPPB is the kernel's frequency resolution: 1/65536 ppm.
const freqUnitPPB = 1000.0 / 65536

// realMinusRaw returns CLOCK_REALTIME minus CLOCK_MONOTONIC_RAW, and the raw
// reading, in nanoseconds. The raw clock ignores every adjustment, so the
// difference moves exactly by the steps and frequency corrections applied to
// the realtime clock. Realtime is read on both sides of the raw read and the
// midpoint kept; of several tries the narrowest bracket wins, so that a vCPU
// stall of the emulator (common on a loaded host) does not skew the result.
func realMinusRaw(t *testing.T) (offset, raw int64) {
	t.Helper()
	read := func(id int32) int64 {
		var ts unix.Timespec
		if err := unix.ClockGettime(id, &ts); err != nil {
			t.Fatalf("clock_gettime(%d): %v", id, err)
		}
		return ts.Nano()
	}
	best := int64(math.MaxInt64)
	for try := 0; try < 50 && best > 100_000; try++ {
		a := read(unix.CLOCK_REALTIME)
		r := read(unix.CLOCK_MONOTONIC_RAW)
		b := read(unix.CLOCK_REALTIME)
		if width := b - a; width >= 0 && width < best {
			best, offset, raw = width, (a+b)/2-r, r
		}
	}
	if best == math.MaxInt64 {
		t.Fatal("CLOCK_REALTIME went backwards in every bracket")
	}
	return offset, raw
}

// measureRatePPM returns how fast the realtime clock runs against the raw
// clock over span, in ppm.
func measureRatePPM(t *testing.T, span time.Duration) float64 {
	t.Helper()
	off0, raw0 := realMinusRaw(t)
	time.Sleep(span)
	off1, raw1 := realMinusRaw(t)
	return float64(off1-off0) / float64(raw1-raw0) * 1e6
}

// readStatus reads the guest kernel's status or fails the test.
func readStatus(t *testing.T, k *clock.Kernel) clock.KernelStatus {
	t.Helper()
	st, err := k.ReadStatus()
	if err != nil {
		t.Fatalf("ReadStatus: %v", err)
	}
	return st
}

func TestGuestTakeOverStopsKernelSlew(t *testing.T) {
	requireGuest(t)
	k := clock.NewKernel()
	tests := []struct {
		name     string
		takeOver bool
		slewing  bool // whether the leftover PLL offset should still move the clock
	}{
		// Control: clearing STA_PLL alone leaves the kernel slewing away the
		// offset a previous daemon handed it; this proves the probe works.
		{name: "PLL cleared only", takeOver: false, slewing: true},
		{name: "TakeOver", takeOver: true, slewing: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := k.SetFrequency(0); err != nil {
				t.Fatal(err)
			}
			// Play the previous NTP daemon: PLL on, 400 ms offset to slew.
			prev := unix.Timex{Modes: unix.ADJ_STATUS | unix.ADJ_OFFSET | unix.ADJ_MICRO, Status: unix.STA_PLL, Offset: 400000}
			if _, err := unix.ClockAdjtime(unix.CLOCK_REALTIME, &prev); err != nil {
				t.Fatalf("set up PLL offset: %v", err)
			}
			if tt.takeOver {
				if err := k.TakeOver(); err != nil {
					t.Fatal(err)
				}
			} else if err := k.SetSync(clock.SyncStatus{}); err != nil {
				t.Fatal(err)
			}
			st := readStatus(t, k)
			t.Logf("after: %+v status %v", st, st.Status)
			if st.Status&(clock.StaPLL|clock.StaFLL) != 0 {
				t.Errorf("status %v: kernel loop still on", st.Status)
			}
			// The kernel computes each second's slew at the second boundary, so
			// the chunk of the current second still runs after TakeOver.
			time.Sleep(1200 * time.Millisecond)
			rate := measureRatePPM(t, 1500*time.Millisecond)
			t.Logf("rate against the raw clock: %.1f ppm", rate)
			if slewing := math.Abs(rate) > 1000; slewing != tt.slewing {
				t.Errorf("rate %.1f ppm: slewing = %v, want %v", rate, slewing, tt.slewing)
			}
		})
	}
	if err := k.TakeOver(); err != nil {
		t.Fatal(err)
	}
}

func TestGuestFrequencyReadBack(t *testing.T) {
	k := takenOverKernel(t)
	tests := []struct {
		name    string
		set     float64
		wantPPB float64
	}{
		{"zero", 0, 0},
		{"fraction", 12345.678, 12345.678},
		{"negative", -250000, -250000},
		{"just inside the limit", 499999, 499999},
		{"clamped high", 600000, 500000},
		{"clamped low", -600000, -500000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := k.SetFrequency(tt.set); err != nil {
				t.Fatal(err)
			}
			got, err := k.Frequency()
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tt.wantPPB) > freqUnitPPB/2 {
				t.Errorf("Frequency() = %.4f ppb, want %.4f", got, tt.wantPPB)
			}
			if st := readStatus(t, k); st.Status&clock.StaPLL != 0 {
				t.Errorf("status %v: STA_PLL on after SetFrequency", st.Status)
			}
		})
	}
}

func TestGuestFrequencyRate(t *testing.T) {
	k := takenOverKernel(t)
	defer func() {
		if err := k.SetFrequency(0); err != nil {
			t.Error(err)
		}
	}()
	for _, ppm := range []float64{500, -500, 200, 0} {
		if err := k.SetFrequency(ppm * 1000); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // let the timekeeper's mult settle
		rate := measureRatePPM(t, 3*time.Second)
		t.Logf("set %+.0f ppm, measured %+.2f ppm", ppm, rate)
		if math.Abs(rate-ppm) > 50 {
			t.Errorf("set %+.0f ppm, clock runs %+.2f ppm against CLOCK_MONOTONIC_RAW", ppm, rate)
		}
	}
}

func TestGuestStep(t *testing.T) {
	requireGuest(t)
	k := clock.NewKernel()
	const freqPPB = 12345.0
	if err := k.SetFrequency(freqPPB); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := k.SetFrequency(0); err != nil {
			t.Error(err)
		}
	}()
	tests := []struct {
		name string
		d    time.Duration
	}{
		{"forward 10 s", 10 * time.Second},
		{"back 3.5 s", -3500 * time.Millisecond},
		{"forward 250 ms", 250 * time.Millisecond},
		{"back 250 ms", -250 * time.Millisecond},
		{"back a day", -24 * time.Hour},
	}
	const tolerance = 10 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := k.SetSync(clock.SyncStatus{Synchronized: true, MaxError: time.Millisecond, EstError: time.Microsecond, TAIOffset: 37}); err != nil {
				t.Fatal(err)
			}
			before, _ := realMinusRaw(t)
			if err := k.Step(tt.d); err != nil {
				t.Fatal(err)
			}
			after, _ := realMinusRaw(t)
			moved := time.Duration(after - before)
			if diff := moved - tt.d; diff < -tolerance || diff > tolerance {
				t.Errorf("Step(%v) moved the clock by %v", tt.d, moved)
			}
			// A step resets the kernel's NTP state (ntp_clear): the servo must
			// publish its status again afterwards, which Kernel.Step documents.
			st := readStatus(t, k)
			if st.Synchronized() || st.MaxError != 16*time.Second || st.EstError != 16*time.Second {
				t.Errorf("after Step: status %v, maxerror %v, esterror %v; want UNSYNC, 16s, 16s", st.Status, st.MaxError, st.EstError)
			}
			if st.TAIOffset != 37 {
				t.Errorf("after Step: TAI offset %d, want 37 kept", st.TAIOffset)
			}
			if math.Abs(st.FrequencyPPB-freqPPB) > freqUnitPPB {
				t.Errorf("after Step: frequency %.3f ppb, want %.3f kept", st.FrequencyPPB, freqPPB)
			}
		})
	}
}
