//go:build linux

package qemutest

import (
	"slices"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

func TestGuestSetSync(t *testing.T) {
	k := takenOverKernel(t)
	tests := []struct {
		name      string
		in        clock.SyncStatus
		wantState clock.ClockState
		wantTAI   int
	}{
		{
			name:      "locked",
			in:        clock.SyncStatus{Synchronized: true, MaxError: 2 * time.Millisecond, EstError: 50 * time.Microsecond, TAIOffset: 37},
			wantState: clock.TimeOK, wantTAI: 37,
		},
		{
			name:      "unlocked keeps the known TAI offset",
			in:        clock.SyncStatus{MaxError: 100 * time.Millisecond, EstError: 10 * time.Millisecond},
			wantState: clock.TimeError, wantTAI: 37,
		},
		{
			name:      "locked again with a new TAI offset",
			in:        clock.SyncStatus{Synchronized: true, MaxError: 300 * time.Microsecond, EstError: 1500 * time.Nanosecond, TAIOffset: 36},
			wantState: clock.TimeOK, wantTAI: 36,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			if err := k.SetSync(tt.in); err != nil {
				t.Fatal(err)
			}
			st := readStatus(t, k)
			elapsed := time.Since(start)
			if st.State != tt.wantState {
				t.Errorf("state %v, want %v", st.State, tt.wantState)
			}
			if st.Synchronized() != tt.in.Synchronized {
				t.Errorf("status %v: synchronized %v, want %v", st.Status, st.Synchronized(), tt.in.Synchronized)
			}
			if st.Status&(clock.StaPLL|clock.StaFLL|clock.StaIns|clock.StaDel) != 0 {
				t.Errorf("status %v: unexpected PLL/FLL/leap flags", st.Status)
			}
			// The kernel adds 500 µs per second to maxerror.
			grown := tt.in.MaxError.Truncate(time.Microsecond) + time.Microsecond + (elapsed/time.Second+1)*500*time.Microsecond
			if st.MaxError < tt.in.MaxError.Truncate(time.Microsecond) || st.MaxError > grown {
				t.Errorf("maxerror %v, want %v plus the kernel's growth", st.MaxError, tt.in.MaxError)
			}
			if want := tt.in.EstError.Round(time.Microsecond); st.EstError < tt.in.EstError || st.EstError > want+time.Microsecond {
				t.Errorf("esterror %v, want %v rounded up to µs", st.EstError, tt.in.EstError)
			}
			if st.TAIOffset != tt.wantTAI {
				t.Errorf("TAI offset %d, want %d", st.TAIOffset, tt.wantTAI)
			}
		})
	}
}

func TestGuestLeapSecond(t *testing.T) {
	k := takenOverKernel(t)
	if err := k.SetFrequency(0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		leap       clock.Leap
		taiBefore  int
		wantStates []clock.ClockState // in order, after the announcement
		wantJump   time.Duration      // change of realtime against the raw clock
		wantTAI    int
	}{
		{
			// The leap second of 2016-12-31: 23:59:60 is inserted, the
			// kernel shows TIME_OOP during it and TAI-UTC goes 36 -> 37.
			name: "insert 2016-12-31", leap: clock.LeapInsert, taiBefore: 36,
			wantStates: []clock.ClockState{clock.TimeIns, clock.TimeOOP, clock.TimeWait},
			wantJump:   -time.Second, wantTAI: 37,
		},
		{
			// No negative leap second has happened yet; the kernel skips
			// 23:59:59 and TAI-UTC goes down by one.
			name: "delete 2016-12-31", leap: clock.LeapDelete, taiBefore: 36,
			wantStates: []clock.ClockState{clock.TimeDel, clock.TimeWait},
			wantJump:   time.Second, wantTAI: 35,
		},
	}
	midnight := time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Put the guest clock 2.5 s before the leap.
			if err := k.Step(midnight.Add(-2500 * time.Millisecond).Sub(time.Now())); err != nil {
				t.Fatal(err)
			}
			if err := k.SetSync(clock.SyncStatus{Synchronized: true, MaxError: time.Millisecond, Leap: tt.leap, TAIOffset: tt.taiBefore}); err != nil {
				t.Fatal(err)
			}
			before, _ := realMinusRaw(t)
			var states []clock.ClockState
			deadline := time.Now().Add(5 * time.Second) // monotonic: immune to the leap
			for time.Now().Before(deadline) {
				st := readStatus(t, k)
				if len(states) == 0 || states[len(states)-1] != st.State {
					states = append(states, st.State)
					t.Logf("%s: %v (status %v, %+v)", time.Now().UTC().Format(time.RFC3339Nano), st.State, st.Status, st)
				}
				time.Sleep(20 * time.Millisecond)
			}
			after, _ := realMinusRaw(t)
			jump := time.Duration(after - before)
			// The kernel only moves to TIME_INS/TIME_DEL at its next second
			// boundary, so a leading TIME_OK is allowed.
			if len(states) > 0 && states[0] == clock.TimeOK {
				states = states[1:]
			}
			if !slices.Equal(states, tt.wantStates) {
				t.Errorf("states %v, want %v", states, tt.wantStates)
			}
			if diff := jump - tt.wantJump; diff < -20*time.Millisecond || diff > 20*time.Millisecond {
				t.Errorf("realtime moved %v against the raw clock, want %v", jump, tt.wantJump)
			}
			st := readStatus(t, k)
			if st.TAIOffset != tt.wantTAI || st.Leap() != tt.leap {
				t.Errorf("after the leap: TAI %d, leap %v; want %d, %v", st.TAIOffset, st.Leap(), tt.wantTAI, tt.leap)
			}
			if d := time.Now().UTC().Sub(midnight); d < time.Second || d > 4*time.Second {
				t.Errorf("clock reads %v after the leap, want 2017-01-01T00:00:0x", time.Now().UTC())
			}
			// Clearing the flag ends TIME_WAIT at the next second.
			if err := k.SetSync(clock.SyncStatus{Synchronized: true, MaxError: time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			if st := readStatus(t, k); st.State != clock.TimeOK {
				t.Errorf("state %v after clearing the leap flag, want TIME_OK", st.State)
			}
		})
	}
}
