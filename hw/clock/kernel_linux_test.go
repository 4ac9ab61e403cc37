//go:build linux

package clock

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readOnlyKernel is NewKernel with a syscall wrapper that fails the test on
// anything but a mode-0 (read-only) call before it reaches the kernel.
func readOnlyKernel(t *testing.T) *Kernel {
	t.Helper()
	k := NewKernel()
	k.adjtime = func(tx *unix.Timex) (int, error) {
		if tx.Modes != 0 {
			t.Fatalf("host test reached clock_adjtime with modes 0x%x", tx.Modes)
		}
		return unix.ClockAdjtime(unix.CLOCK_REALTIME, tx)
	}
	return k
}

func TestABIConstants(t *testing.T) {
	tests := []struct {
		name      string
		got, want int64
	}{
		{"ADJ_OFFSET", adjOffset, unix.ADJ_OFFSET},
		{"ADJ_FREQUENCY", adjFrequency, unix.ADJ_FREQUENCY},
		{"ADJ_MAXERROR", adjMaxError, unix.ADJ_MAXERROR},
		{"ADJ_ESTERROR", adjEstError, unix.ADJ_ESTERROR},
		{"ADJ_STATUS", adjStatus, unix.ADJ_STATUS},
		{"ADJ_TAI", adjTAI, unix.ADJ_TAI},
		{"ADJ_SETOFFSET", adjSetOffset, unix.ADJ_SETOFFSET},
		{"ADJ_NANO", adjNano, unix.ADJ_NANO},
		{"STA_PLL", int64(StaPLL), unix.STA_PLL},
		{"STA_FLL", int64(StaFLL), unix.STA_FLL},
		{"STA_INS", int64(StaIns), unix.STA_INS},
		{"STA_DEL", int64(StaDel), unix.STA_DEL},
		{"STA_UNSYNC", int64(StaUnsync), unix.STA_UNSYNC},
		{"STA_NANO", int64(StaNano), unix.STA_NANO},
		{"STA_CLK", int64(StaClk), unix.STA_CLK},
		{"TIME_OK", int64(TimeOK), unix.TIME_OK},
		{"TIME_INS", int64(TimeIns), unix.TIME_INS},
		{"TIME_DEL", int64(TimeDel), unix.TIME_DEL},
		{"TIME_OOP", int64(TimeOOP), unix.TIME_OOP},
		{"TIME_WAIT", int64(TimeWait), unix.TIME_WAIT},
		{"TIME_ERROR", int64(TimeError), unix.TIME_ERROR},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = 0x%x, unix says 0x%x", tt.name, tt.got, tt.want)
		}
	}
}

// TestKernelReadStatusHost reads the host clock's discipline state with mode
// 0 only; whatever daemon runs here, the answer must be self-consistent.
func TestKernelReadStatusHost(t *testing.T) {
	k := readOnlyKernel(t)
	st, err := k.ReadStatus()
	if err != nil {
		t.Fatalf("ReadStatus: %v", err)
	}
	t.Logf("host kernel clock: %+v (status %v, state %v)", st, st.Status, st.State)
	if st.State < TimeOK || st.State > TimeError {
		t.Errorf("state %d out of range", st.State)
	}
	if !st.Synchronized() && st.State != TimeError {
		t.Errorf("STA_UNSYNC set but state %v, want TIME_ERROR", st.State)
	}
	if st.FrequencyPPB < -500000 || st.FrequencyPPB > 500000 {
		t.Errorf("frequency %v ppb beyond the kernel's ±500 ppm", st.FrequencyPPB)
	}
	if st.MaxError < 0 || st.MaxError > maxErrorLimit || st.EstError < 0 {
		t.Errorf("maxerror %v / esterror %v out of range", st.MaxError, st.EstError)
	}
	freq, err := k.Frequency()
	if err != nil {
		t.Fatalf("Frequency: %v", err)
	}
	if freq != st.FrequencyPPB && st.Status&StaPLL == 0 {
		t.Errorf("Frequency() = %v, ReadStatus said %v with the PLL off", freq, st.FrequencyPPB)
	}
	if d := time.Since(k.Now()); d < 0 || d > time.Second {
		t.Errorf("Now() is %v away from time.Now()", d)
	}
}

// TestKernelSteeringRefusedOnHost proves that without the opt-in every
// steering method returns ErrSteeringRefused before any clock_adjtime call.
// It never sets the opt-in; it clears an inherited one for its duration.
func TestKernelSteeringRefusedOnHost(t *testing.T) {
	t.Setenv(SteerEnv, "")
	if err := os.Unsetenv(SteerEnv); err != nil {
		t.Fatal(err)
	}
	// NewKernel and the zero value share the default (host) policy.
	k := NewKernel()
	var reached []uint32 // modes of calls that got past the guard
	k.adjtime = func(tx *unix.Timex) (int, error) {
		reached = append(reached, tx.Modes)
		return 0, errors.New("fake clock_adjtime: must not be reached")
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"TakeOver", k.TakeOver},
		{"SetFrequency", func() error { return k.SetFrequency(1000) }},
		{"Step", func() error { return k.Step(time.Millisecond) }},
		{"SetSync", func() error { return k.SetSync(SyncStatus{Synchronized: true, TAIOffset: 37}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached = nil
			if err := tt.call(); !errors.Is(err, ErrSteeringRefused) {
				t.Errorf("%s without %s = %v, want ErrSteeringRefused", tt.name, SteerEnv, err)
			}
			if len(reached) != 0 {
				t.Errorf("%s reached clock_adjtime with modes %#x despite the missing opt-in", tt.name, reached)
			}
		})
	}
}

// TestKernelApplyCopiesRequest checks the copy from timexRequest into
// unix.Timex against a recording fake, with the policy forced open (the
// fake, not the kernel, receives the call).
func TestKernelApplyCopiesRequest(t *testing.T) {
	var got unix.Timex
	k := &Kernel{
		policy: steerPolicy{getenv: func(string) string { return SteerAppliance }},
		adjtime: func(tx *unix.Timex) (int, error) {
			got = *tx
			return 0, nil
		},
	}
	if err := k.Step(-1500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got.Modes != unix.ADJ_SETOFFSET|unix.ADJ_NANO || got.Time.Sec != -2 || got.Time.Usec != 500000000 {
		t.Errorf("Step copied %+v", got)
	}
	if err := k.SetSync(SyncStatus{Leap: LeapInsert, MaxError: time.Millisecond, TAIOffset: 36}); err != nil {
		t.Fatal(err)
	}
	if got.Modes != unix.ADJ_STATUS|unix.ADJ_MAXERROR|unix.ADJ_ESTERROR|unix.ADJ_TAI ||
		got.Status != unix.STA_UNSYNC|unix.STA_INS || got.Maxerror != 1000 || got.Constant != 36 {
		t.Errorf("SetSync copied %+v", got)
	}
	k.adjtime = func(*unix.Timex) (int, error) { return -1, unix.EPERM }
	if err := k.SetFrequency(1); !errors.Is(err, unix.EPERM) {
		t.Errorf("SetFrequency with a failing syscall = %v, want EPERM wrapped", err)
	}
}

// TestKernelClockID reads the boot's identity: the host's own, one boot's
// file read twice alike, another boot's different, and a missing or empty
// file refused.
func TestKernelClockID(t *testing.T) {
	host, err := NewKernel().ClockID()
	if err != nil {
		t.Fatalf("host boot ID: %v", err)
	}
	if len(host) != len("boot:")+36 || host[:5] != "boot:" {
		t.Errorf("host clock ID %q, want boot: and a 36-character UUID", host)
	}
	dir := t.TempDir()
	write := func(name, s string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	one := &Kernel{bootIDPath: write("one", "6f1c-aa\n")}
	a, errA := one.ClockID()
	b, errB := one.ClockID()
	if errA != nil || errB != nil || a != "boot:6f1c-aa" || a != b {
		t.Errorf("one boot read twice: %q (%v), %q (%v), want boot:6f1c-aa both times", a, errA, b, errB)
	}
	other, err := (&Kernel{bootIDPath: write("other", "71d0-bb\n")}).ClockID()
	if err != nil || other == a {
		t.Errorf("another boot: %q (%v), want a different ID from %q", other, err, a)
	}
	for _, k := range []*Kernel{{bootIDPath: dir + "/missing"}, {bootIDPath: write("empty", "\n")}} {
		if id, err := k.ClockID(); err == nil {
			t.Errorf("%s: ID %q, want an error", k.bootIDPath, id)
		}
	}
}
