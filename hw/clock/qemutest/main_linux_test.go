//go:build linux

package qemutest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/aunsorm/timenode/hw/clock"
	"golang.org/x/sys/unix"
)

// resultMarker prefixes the line the guest writes to its second serial port;
// the host test accepts only resultMarker+"PASS".
const resultMarker = "TIMENODE_QEMU_CLOCK_RESULT="

// inGuest is set by TestMain when the binary runs as the guest's init.
var inGuest bool

func TestMain(m *testing.M) {
	if os.Getpid() != 1 {
		os.Exit(m.Run())
	}
	inGuest = true
	os.Exit(guestMain(m))
}

// guestMain prepares the guest, runs the TestGuest* tests, reports and powers
// off. It returns only if the power-off fails; the kernel then panics on
// init's exit and qemu, started with -no-reboot, stops.
func guestMain(m *testing.M) int {
	result := "FAIL setup"
	defer func() {
		report(result)
		unix.Sync()
		if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
			fmt.Fprintf(os.Stderr, "qemutest: power off: %v\n", err)
		}
	}()
	if err := mountGuestFilesystems(); err != nil {
		fmt.Fprintf(os.Stderr, "qemutest: %v\n", err)
		return 1
	}
	if err := os.Setenv(clock.SteerEnv, clock.SteerGuest); err != nil {
		fmt.Fprintf(os.Stderr, "qemutest: %v\n", err)
		return 1
	}
	for name, value := range map[string]string{"test.v": "true", "test.run": "^TestGuest", "test.timeout": "5m"} {
		if err := flag.Set(name, value); err != nil {
			fmt.Fprintf(os.Stderr, "qemutest: set -%s: %v\n", name, err)
			return 1
		}
	}
	if cs, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource"); err == nil {
		fmt.Printf("qemutest: clocksource %s", cs)
	}
	code := m.Run()
	result = "PASS"
	if code != 0 {
		result = fmt.Sprintf("FAIL exit %d", code)
	}
	return code
}

// mountGuestFilesystems mounts /proc (the steering policy reads
// /proc/cmdline), devtmpfs on /dev (for the second serial port) and /sys
// (to log the clocksource).
func mountGuestFilesystems() error {
	mounts := []struct{ source, target, fstype string }{
		{"proc", "/proc", "proc"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"sysfs", "/sys", "sysfs"},
	}
	for _, mnt := range mounts {
		if err := os.MkdirAll(mnt.target, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", mnt.target, err)
		}
		if err := unix.Mount(mnt.source, mnt.target, mnt.fstype, 0, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", mnt.fstype, mnt.target, err)
		}
	}
	return nil
}

// report writes the result line to the second serial port, which carries
// nothing else, and echoes it on the console.
func report(result string) {
	line := resultMarker + result + "\n"
	fmt.Print(line)
	f, err := os.OpenFile("/dev/ttyS1", os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "qemutest: open /dev/ttyS1: %v\n", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		fmt.Fprintf(os.Stderr, "qemutest: write /dev/ttyS1: %v\n", err)
	}
	if err := f.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		fmt.Fprintf(os.Stderr, "qemutest: sync /dev/ttyS1: %v\n", err)
	}
}

// requireGuest skips a TestGuest* test outside the guest: it steers the
// clock and must never run on the host.
func requireGuest(t *testing.T) {
	t.Helper()
	if !inGuest {
		t.Skip("steers the kernel clock: runs only as /init of the qemu guest (make qemu-clock-test)")
	}
}

// takenOverKernel is the kernel clock adapter with the kernel's own discipline
// taken over, as the daemon runs it; it skips outside the guest.
func takenOverKernel(t *testing.T) *clock.Kernel {
	t.Helper()
	requireGuest(t)
	k := clock.NewKernel()
	if err := k.TakeOver(); err != nil {
		t.Fatal(err)
	}
	return k
}
