//go:build linux

package clock

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Kernel is the system clock, CLOCK_REALTIME, steered through
// clock_adjtime(2). Reads are always allowed; the steering methods (TakeOver,
// SetFrequency, Step, SetSync) refuse with ErrSteeringRefused unless the
// process opted in through SteerEnv. The zero value behaves like
// NewKernel().
type Kernel struct {
	policy steerPolicy // zero: hostPolicy
	// adjtime performs clock_adjtime(CLOCK_REALTIME); tests replace it.
	adjtime func(*unix.Timex) (int, error) // nil: the real call
	// bootIDPath is where the boot's identity is read; tests replace it.
	bootIDPath string // "": /proc/sys/kernel/random/boot_id
}

// ClockID implements Identified: the kernel's boot ID. Within one boot
// the system clock runs from the same oscillator with the same
// calibration; a reboot may calibrate it anew, and a cold board warms up.
func (k *Kernel) ClockID() (string, error) {
	path := k.bootIDPath
	if path == "" {
		path = "/proc/sys/kernel/random/boot_id"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("clock identity: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("clock identity: %s is empty", path)
	}
	return "boot:" + id, nil
}

var (
	_ Steerable  = (*Kernel)(nil)
	_ Identified = (*Kernel)(nil)
)

// NewKernel returns the kernel clock. It does not touch the clock.
func NewKernel() *Kernel {
	return &Kernel{}
}

// syscall performs clock_adjtime(CLOCK_REALTIME) through the test hook if
// one is set.
func (k *Kernel) syscall(tx *unix.Timex) (int, error) {
	if k.adjtime != nil {
		return k.adjtime(tx)
	}
	return unix.ClockAdjtime(unix.CLOCK_REALTIME, tx)
}

// Now reads CLOCK_REALTIME.
func (k *Kernel) Now() time.Time { return time.Now() }

// ReadStatus reads the kernel's discipline state without changing anything
// (clock_adjtime with mode 0).
func (k *Kernel) ReadStatus() (KernelStatus, error) {
	var tx unix.Timex
	state, err := k.syscall(&tx)
	if err != nil {
		return KernelStatus{}, fmt.Errorf("clock: read kernel clock status: %w", err)
	}
	return decodeStatus(state, tx.Status, tx.Offset, tx.Freq, tx.Maxerror, tx.Esterror, tx.Tai), nil
}

// Frequency returns the kernel's frequency correction in parts per billion.
func (k *Kernel) Frequency() (float64, error) {
	st, err := k.ReadStatus()
	if err != nil {
		return 0, err
	}
	return st.FrequencyPPB, nil
}

// TakeOver hands the kernel clock to timenode's servo: it zeroes the phase
// offset the kernel PLL may still be slewing for a previous NTP daemon, turns
// the PLL and FLL off and marks the clock unsynchronised. Call it once
// before the first SetFrequency.
func (k *Kernel) TakeOver() error {
	for i, req := range takeOverRequests() {
		if err := k.apply(req); err != nil {
			return fmt.Errorf("clock: take over kernel clock (call %d): %w", i+1, err)
		}
	}
	return nil
}

// SetFrequency sets the absolute frequency correction (ADJ_FREQUENCY),
// clamped to the kernel's ±500 ppm and rounded to its 1/65536 ppm step.
func (k *Kernel) SetFrequency(ppb float64) error {
	req, err := frequencyRequest(ppb)
	if err != nil {
		return fmt.Errorf("clock: set frequency: %w", err)
	}
	if err := k.apply(req); err != nil {
		return fmt.Errorf("clock: set frequency %.3f ppb: %w", ppb, err)
	}
	return nil
}

// Step jumps the clock by d (ADJ_SETOFFSET with nanosecond resolution).
// The kernel resets its NTP state on a step (STA_UNSYNC set, maxerror and
// esterror 16 s; the frequency and TAI offset are kept), so call SetSync
// again afterwards; the qemu guest test checks this.
func (k *Kernel) Step(d time.Duration) error {
	if err := k.apply(stepRequest(d)); err != nil {
		return fmt.Errorf("clock: step by %v: %w", d, err)
	}
	return nil
}

// SetSync writes the status word (STA_UNSYNC unless s.Synchronized,
// STA_INS/STA_DEL from s.Leap, the kernel PLL/FLL off), maxerror, esterror
// and, when s.TAIOffset is non-zero, the TAI offset.
func (k *Kernel) SetSync(s SyncStatus) error {
	req, err := syncRequest(s)
	if err != nil {
		return fmt.Errorf("clock: set sync status: %w", err)
	}
	if err := k.apply(req); err != nil {
		return fmt.Errorf("clock: set sync status: %w", err)
	}
	return nil
}

// apply checks the steering policy, then performs one clock_adjtime call
// with a non-zero mode. It is the only path to such a call.
func (k *Kernel) apply(req timexRequest) error {
	policy := k.policy
	if policy.getenv == nil {
		policy = hostPolicy
	}
	if err := policy.check(); err != nil {
		return err
	}
	if req.Modes == 0 {
		panic("clock: apply called with mode 0; use ReadStatus")
	}
	tx := unix.Timex{
		Modes:    req.Modes,
		Offset:   req.Offset,
		Freq:     req.Freq,
		Maxerror: req.MaxError,
		Esterror: req.EstError,
		Status:   req.Status,
		Constant: req.Constant,
		Time:     unix.Timeval{Sec: req.Sec, Usec: req.Nsec},
	}
	if _, err := k.syscall(&tx); err != nil {
		return fmt.Errorf("clock_adjtime modes 0x%x: %w", req.Modes, err)
	}
	return nil
}
