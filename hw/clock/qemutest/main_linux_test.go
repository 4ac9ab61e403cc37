//go:build linux

package qemutest

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/clock/internal/guest"
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
		fmt.Print(resultMarker + result + "\n")
		guest.Report(resultMarker + result + "\n")
		guest.PowerOff()
	}()
	if err := guest.Mount(); err != nil {
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
