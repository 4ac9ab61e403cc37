package clock

import (
	"math"
	"testing"
	"time"
)

func TestFrequencyRequest(t *testing.T) {
	tests := []struct {
		name    string
		ppb     float64
		want    int64
		wantErr bool
	}{
		{name: "zero", ppb: 0, want: 0},
		{name: "one ppm", ppb: 1000, want: 65536},
		{name: "minus one ppm", ppb: -1000, want: -65536},
		{name: "sub-unit rounds to nearest", ppb: 0.01, want: 1},
		{name: "below half a unit rounds to zero", ppb: 0.007, want: 0},
		{name: "fraction", ppb: 12345.678, want: 809086},
		{name: "limit", ppb: 500000, want: 500 << 16},
		{name: "clamped high", ppb: 600000, want: 500 << 16},
		{name: "clamped low", ppb: -1e12, want: -500 << 16},
		{name: "infinite clamps", ppb: math.Inf(1), want: 500 << 16},
		{name: "NaN rejected", ppb: math.NaN(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := frequencyRequest(tt.ppb)
			if (err != nil) != tt.wantErr {
				t.Fatalf("frequencyRequest(%v) error = %v, wantErr %v", tt.ppb, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			want := timexRequest{Modes: adjFrequency, Freq: tt.want}
			if got != want {
				t.Errorf("frequencyRequest(%v) = %+v, want %+v", tt.ppb, got, want)
			}
		})
	}
}

func TestScaledRoundTrip(t *testing.T) {
	for _, ppb := range []float64{0, 1, -1, 123.456, -499999.9, 250000} {
		scaled, err := ppbToScaled(ppb)
		if err != nil {
			t.Fatal(err)
		}
		if got := scaledToPPB(scaled); math.Abs(got-ppb) > 1000.0/65536/2 {
			t.Errorf("scaledToPPB(ppbToScaled(%v)) = %v, more than half a unit off", ppb, got)
		}
	}
}

func TestStepRequest(t *testing.T) {
	tests := []struct {
		name      string
		d         time.Duration
		sec, nsec int64
	}{
		{name: "zero", d: 0, sec: 0, nsec: 0},
		{name: "one nanosecond", d: 1, sec: 0, nsec: 1},
		{name: "minus one nanosecond", d: -1, sec: -1, nsec: 999999999},
		{name: "ten seconds", d: 10 * time.Second, sec: 10, nsec: 0},
		{name: "minus ten seconds", d: -10 * time.Second, sec: -10, nsec: 0},
		{name: "minus one and a half", d: -1500 * time.Millisecond, sec: -2, nsec: 500000000},
		{name: "plus one and a half", d: 1500 * time.Millisecond, sec: 1, nsec: 500000000},
		{name: "minus quarter", d: -250 * time.Millisecond, sec: -1, nsec: 750000000},
		{name: "years", d: 9 * 365 * 24 * time.Hour, sec: 9 * 365 * 86400, nsec: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := stepRequest(tt.d)
			want := timexRequest{Modes: adjSetOffset | adjNano, Sec: tt.sec, Nsec: tt.nsec}
			if got != want {
				t.Errorf("stepRequest(%v) = %+v, want %+v", tt.d, got, want)
			}
			if back := time.Duration(got.Sec)*time.Second + time.Duration(got.Nsec); back != tt.d {
				t.Errorf("fields sum to %v, want %v", back, tt.d)
			}
		})
	}
}

func TestSyncRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      SyncStatus
		want    timexRequest
		wantErr bool
	}{
		{
			name: "unsynchronised, nothing known",
			in:   SyncStatus{},
			want: timexRequest{Modes: adjStatus | adjMaxError | adjEstError, Status: int32(StaUnsync)},
		},
		{
			name: "locked clears UNSYNC and sets TAI",
			in:   SyncStatus{Synchronized: true, MaxError: 2 * time.Millisecond, EstError: 50 * time.Microsecond, TAIOffset: 37},
			want: timexRequest{Modes: adjStatus | adjMaxError | adjEstError | adjTAI, MaxError: 2000, EstError: 50, Constant: 37},
		},
		{
			name: "leap insert",
			in:   SyncStatus{Synchronized: true, Leap: LeapInsert, TAIOffset: 36},
			want: timexRequest{Modes: adjStatus | adjMaxError | adjEstError | adjTAI, Status: int32(StaIns), Constant: 36},
		},
		{
			name: "leap delete while unsynchronised",
			in:   SyncStatus{Leap: LeapDelete},
			want: timexRequest{Modes: adjStatus | adjMaxError | adjEstError, Status: int32(StaUnsync | StaDel)},
		},
		{
			name: "sub-microsecond errors round up",
			in:   SyncStatus{Synchronized: true, MaxError: 1001 * time.Nanosecond, EstError: 1},
			want: timexRequest{Modes: adjStatus | adjMaxError | adjEstError, MaxError: 2, EstError: 1},
		},
		{
			name: "errors clamp to the kernel's 16 s",
			in:   SyncStatus{MaxError: time.Hour, EstError: time.Minute},
			want: timexRequest{Modes: adjStatus | adjMaxError | adjEstError, Status: int32(StaUnsync), MaxError: 16000000, EstError: 16000000},
		},
		{name: "unknown leap", in: SyncStatus{Leap: Leap(3)}, wantErr: true},
		{name: "negative maxerror", in: SyncStatus{MaxError: -1}, wantErr: true},
		{name: "negative esterror", in: SyncStatus{EstError: -time.Second}, wantErr: true},
		{name: "negative TAI", in: SyncStatus{TAIOffset: -1}, wantErr: true},
		{name: "huge TAI", in: SyncStatus{TAIOffset: maxTAIOffset + 1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := syncRequest(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("syncRequest(%+v) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("syncRequest(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
			if StatusBits(got.Status)&(StaPLL|StaFLL|StaPPSFreq|StaPPSTime|StaFreqHold) != 0 {
				t.Errorf("status %v enables a kernel loop that would fight the servo", StatusBits(got.Status))
			}
		})
	}
}

func TestTakeOverRequests(t *testing.T) {
	reqs := takeOverRequests()
	if reqs[0].Modes != adjOffset|adjStatus || StatusBits(reqs[0].Status)&StaPLL == 0 || reqs[0].Offset != 0 {
		t.Errorf("first call %+v must zero the PLL offset with STA_PLL set", reqs[0])
	}
	if reqs[1].Modes != adjStatus || StatusBits(reqs[1].Status) != StaUnsync {
		t.Errorf("second call %+v must leave only STA_UNSYNC set", reqs[1])
	}
}

func TestDecodeStatus(t *testing.T) {
	got := decodeStatus(1, int32(StaIns|StaNano), -250, 65536*-3, 1500, 20, 37)
	want := KernelStatus{State: TimeIns, Status: StaIns | StaNano, FrequencyPPB: -3000,
		MaxError: 1500 * time.Microsecond, EstError: 20 * time.Microsecond, TAIOffset: 37, PLLOffset: -250}
	if got != want {
		t.Fatalf("decodeStatus = %+v, want %+v", got, want)
	}
	if !got.Synchronized() || got.Leap() != LeapInsert {
		t.Errorf("Synchronized() = %v, Leap() = %v; want true, insert", got.Synchronized(), got.Leap())
	}
	unsync := KernelStatus{Status: StaUnsync | StaDel}
	if unsync.Synchronized() || unsync.Leap() != LeapDelete {
		t.Errorf("unsync: Synchronized() = %v, Leap() = %v; want false, delete", unsync.Synchronized(), unsync.Leap())
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{StatusBits(0).String(), "0"},
		{(StaPLL | StaUnsync | StaNano).String(), "PLL|UNSYNC|NANO"},
		{StatusBits(0x10000 | 0x10).String(), "INS|0x10000"},
		{TimeOK.String(), "TIME_OK"},
		{TimeOOP.String(), "TIME_OOP"},
		{TimeError.String(), "TIME_ERROR"},
		{ClockState(9).String(), "ClockState(9)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestDecodeStatusOffsetUnits(t *testing.T) {
	if got := decodeStatus(0, 0, 400000, 0, 0, 0, 0).PLLOffset; got != 400*time.Millisecond {
		t.Errorf("microsecond offset decoded as %v, want 400ms", got)
	}
	if got := decodeStatus(0, int32(StaNano), 400000, 0, 0, 0, 0).PLLOffset; got != 400*time.Microsecond {
		t.Errorf("nanosecond offset decoded as %v, want 400µs", got)
	}
}
