package clock

import (
	"errors"
	"testing"
)

func TestSteerPolicy(t *testing.T) {
	guestCmdline := "console=ttyS0 panic=-1 " + GuestCmdlineFlag
	tests := []struct {
		name    string
		env     string
		pid     int
		cmdline string
		cmdErr  error
		allowed bool
	}{
		{name: "unset", env: "", pid: 1, cmdline: guestCmdline},
		{name: "appliance", env: SteerAppliance, pid: 4242, allowed: true},
		{name: "guest init in the guest", env: SteerGuest, pid: 1, cmdline: guestCmdline, allowed: true},
		{name: "guest value, not PID 1", env: SteerGuest, pid: 4242, cmdline: guestCmdline},
		{name: "guest value, PID 1 of a container on the host", env: SteerGuest, pid: 1, cmdline: "BOOT_IMAGE=/vmlinuz root=/dev/sda1"},
		{name: "flag only as a prefix", env: SteerGuest, pid: 1, cmdline: GuestCmdlineFlag + "0"},
		{name: "cmdline unreadable", env: SteerGuest, pid: 1, cmdErr: errors.New("no /proc")},
		{name: "other value", env: "yes", pid: 1, cmdline: guestCmdline},
		{name: "case matters", env: "Guest", pid: 1, cmdline: guestCmdline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := steerPolicy{
				getenv: func(k string) string {
					if k != SteerEnv {
						t.Errorf("policy read %q, want %q", k, SteerEnv)
					}
					return tt.env
				},
				getpid:  func() int { return tt.pid },
				cmdline: func() (string, error) { return tt.cmdline, tt.cmdErr },
			}
			err := p.check()
			if tt.allowed && err != nil {
				t.Errorf("check() = %v, want allowed", err)
			}
			if !tt.allowed && !errors.Is(err, ErrSteeringRefused) {
				t.Errorf("check() = %v, want ErrSteeringRefused", err)
			}
		})
	}
}
