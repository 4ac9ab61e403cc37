//go:build linux

// Package guest holds what the project's throwaway qemu guests share: the
// PID-1 side (mount the kernel's file systems, bring up loopback, report
// one line on the second serial port, power off) and the host side (fetch
// Debian's kernel once into a cache). The guests are test binaries packed
// as /init of an initramfs; see hw/clock/qemutest and hw/clock/futuretest.
package guest

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Mount mounts /proc, devtmpfs on /dev (the second serial port), /dev/pts
// (pseudo-terminals, which the simulated receiver uses), /sys and a tmpfs
// on /tmp.
func Mount() error {
	mounts := []struct{ source, target, fstype string }{
		{"proc", "/proc", "proc"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"devpts", "/dev/pts", "devpts"},
		{"sysfs", "/sys", "sysfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	}
	for _, mnt := range mounts {
		if err := os.MkdirAll(mnt.target, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", mnt.target, err)
		}
		if err := unix.Mount(mnt.source, mnt.target, mnt.fstype, 0, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", mnt.fstype, mnt.target, err)
		}
	}
	return os.Chmod("/tmp", 0o1777)
}

// LoopbackUp sets the loopback interface up, which the kernel leaves down
// when nothing configures it; 127.0.0.1 and ::1 then work.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: set up: %w", err)
	}
	return nil
}

// fileLimit is the descriptor limit a Debian host's systemd gives its
// services (hard 524288); the kernel's default for PID 1 is 4096, which a
// test that opens thousands of loopback connections would hit only here.
const fileLimit = 524288

// RaiseFileLimit gives the guest the descriptor limit of a systemd host, so
// the guest differs from a developer's machine in its date, not its limits.
func RaiseFileLimit() error {
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: fileLimit, Max: fileLimit}); err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE to %d: %w", fileLimit, err)
	}
	return nil
}

// Report writes text to the second serial port, which carries nothing but
// the guest's results, so the host reads them apart from the console.
func Report(text string) {
	f, err := os.OpenFile("/dev/ttyS1", os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "guest: open /dev/ttyS1: %v\n", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		fmt.Fprintf(os.Stderr, "guest: write /dev/ttyS1: %v\n", err)
	}
	if err := f.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		fmt.Fprintf(os.Stderr, "guest: sync /dev/ttyS1: %v\n", err)
	}
}

// PowerOff syncs and powers the guest off. If that fails it returns, init
// exits, the kernel panics and qemu (run with -no-reboot) stops anyway.
func PowerOff() {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Fprintf(os.Stderr, "guest: power off: %v\n", err)
	}
}
