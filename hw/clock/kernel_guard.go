package clock

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// SteerEnv is the environment variable that lets a process steer the kernel
// clock. Development machines and CI run as root with CAP_SYS_TIME, so an
// adjtimex call with a non-zero mode from a test would really move the host's
// clock; every steering method of Kernel therefore refuses to run unless the
// process has opted in:
//
//   - SteerEnv=appliance: the timenode daemon on the appliance (set in the
//     image's /etc/timenode/appliance.env, which its unit reads and which
//     exists nowhere else);
//   - SteerEnv=guest: the qemu guest test (hw/clock/qemutest). Accepted only
//     when the process is PID 1 and the running kernel was booted with
//     GuestCmdlineFlag on its command line, which no host kernel has.
//
// Reading the clock (Now, Frequency, ReadStatus) never needs the opt-in.
const SteerEnv = "TIMENODE_ALLOW_CLOCK_STEER"

// Values of SteerEnv.
const (
	SteerAppliance = "appliance"
	SteerGuest     = "guest"
)

// GuestCmdlineFlag is the kernel command-line word that marks the throwaway
// qemu guest in which SteerEnv=guest is honoured.
const GuestCmdlineFlag = "timenode.clock_guest=1"

// ErrSteeringRefused is returned by the steering methods when the process has
// not opted in through SteerEnv.
var ErrSteeringRefused = errors.New("clock: steering the kernel clock refused")

// steerPolicy decides whether a process may steer the kernel clock. Its
// inputs are plain functions so the decision is tested without a guest.
type steerPolicy struct {
	getenv  func(string) string
	getpid  func() int
	cmdline func() (string, error)
}

// hostPolicy reads the real process environment, PID and /proc/cmdline.
var hostPolicy = steerPolicy{
	getenv: os.Getenv,
	getpid: os.Getpid,
	cmdline: func() (string, error) {
		b, err := os.ReadFile("/proc/cmdline")
		return string(b), err
	},
}

// check returns nil when steering is allowed and an error wrapping
// ErrSteeringRefused that says why not otherwise.
func (p steerPolicy) check() error {
	switch v := p.getenv(SteerEnv); v {
	case SteerAppliance:
		return nil
	case SteerGuest:
		if pid := p.getpid(); pid != 1 {
			return fmt.Errorf("%w: %s=%s but the process is PID %d, not the guest's init", ErrSteeringRefused, SteerEnv, v, pid)
		}
		cmdline, err := p.cmdline()
		if err != nil {
			return fmt.Errorf("%w: %s=%s: read kernel command line: %w", ErrSteeringRefused, SteerEnv, v, err)
		}
		for _, word := range strings.Fields(cmdline) {
			if word == GuestCmdlineFlag {
				return nil
			}
		}
		return fmt.Errorf("%w: %s=%s but the kernel was not booted with %s", ErrSteeringRefused, SteerEnv, v, GuestCmdlineFlag)
	case "":
		return fmt.Errorf("%w: %s is not set (the host clock must not change)", ErrSteeringRefused, SteerEnv)
	default:
		return fmt.Errorf("%w: %s=%q is not %q or %q", ErrSteeringRefused, SteerEnv, v, SteerAppliance, SteerGuest)
	}
}
