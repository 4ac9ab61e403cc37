//go:build linux

package qemutest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/hw/clock/internal/guest"
	"github.com/aunsorm/timenode/hw/clock/internal/initramfs"
)

// bootTimeout bounds one guest run: TCG boots the kernel in well under a
// minute and the guest tests take about half a minute of guest time.
const bootTimeout = 8 * time.Minute

func TestQEMUClockSteering(t *testing.T) {
	if inGuest {
		t.Skip("host side of the qemu test")
	}
	if os.Getenv("CI") != "true" && os.Getenv("TIMENODE_QEMU_TEST") != "1" {
		t.Skip("boots a qemu guest for minutes under TCG: run `make qemu-clock-test` or set TIMENODE_QEMU_TEST=1")
	}
	qemu := testbin.NeedTool(t, "qemu-system-x86_64", "qemu-system-x86")
	goTool := testbin.NeedTool(t, "go", "golang (or a Go toolchain on PATH)")

	kernel := guestKernel(t)
	work := t.TempDir()
	initrd := buildInitramfs(t, goTool, work)

	consoleLog := filepath.Join(work, "console.log")
	resultsLog := filepath.Join(work, "results.log")
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	// clocksource=hpet: under TCG the kernel's watchdog may declare the TSC
	// unstable mid-test, and switching clocksource clears the NTP state
	// (STA_UNSYNC, maxerror 16 s) under the tests' feet.
	cmd := guest.QEMU(ctx, qemu, kernel, initrd, "console=ttyS0 panic=-1 loglevel=5 clocksource=hpet "+clock.GuestCmdlineFlag,
		consoleLog, resultsLog, "-m", "512")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("qemu ran for %v", time.Since(start).Round(time.Second))

	console, _ := os.ReadFile(consoleLog)
	results, _ := os.ReadFile(resultsLog)
	t.Logf("guest console:\n%s", console)
	if runErr != nil {
		t.Fatalf("qemu: %v (timeout %v)\n%s", runErr, bootTimeout, stderr.Bytes())
	}
	got := ""
	for _, line := range strings.Split(string(results), "\n") {
		if r, ok := strings.CutPrefix(strings.TrimSpace(line), resultMarker); ok {
			got = r
		}
	}
	switch {
	case got == "PASS":
	case got == "":
		t.Fatalf("the guest wrote no %s line to its second serial port (results: %q)", resultMarker, results)
	default:
		t.Fatalf("guest tests: %s", got)
	}
}

// guestKernel returns the kernel to boot: $TIMENODE_QEMU_KERNEL, or Debian's
// linux-image-amd64 fetched into .cache (gitignored) on first use.
func guestKernel(t *testing.T) string {
	t.Helper()
	cache, err := filepath.Abs(".cache")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("TIMENODE_QEMU_KERNEL") == "" {
		if _, err := os.Stat(filepath.Join(cache, "vmlinuz")); err != nil {
			testbin.NeedTool(t, "apt-get", "apt")
			testbin.NeedTool(t, "dpkg-deb", "dpkg")
		}
	}
	kernel, out, err := guest.Kernel(cache, "./fetch-kernel.sh")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(out) > 0 {
		t.Logf("%s", out)
	}
	return kernel
}

// buildInitramfs compiles this package's tests as a static binary and packs
// it as /init, with /dev/console so the kernel can give init its streams.
func buildInitramfs(t *testing.T, goTool, work string) string {
	t.Helper()
	bin := filepath.Join(work, "init")
	build := exec.Command(goTool, "test", "-c", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x7fELF")) || bytes.Contains(data, []byte("/lib64/ld-linux")) {
		t.Fatalf("%s is not a static ELF binary", bin)
	}
	initrd := filepath.Join(work, "initrd.gz")
	f, err := os.Create(initrd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := []initramfs.Entry{
		{Name: "dev", Mode: 0o755, Dir: true},
		{Name: "dev/console", Mode: 0o600, CharDev: true, Major: 5, Minor: 1},
		{Name: "proc", Mode: 0o555, Dir: true},
		{Name: "sys", Mode: 0o555, Dir: true},
		{Name: "tmp", Mode: 0o1777, Dir: true},
		{Name: "init", Mode: 0o755, Data: data},
	}
	if err := initramfs.WriteGzip(f, entries); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return initrd
}
