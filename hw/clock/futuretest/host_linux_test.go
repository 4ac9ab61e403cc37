//go:build linux

package futuretest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/hw/clock/internal/guest"
	"github.com/aunsorm/timenode/hw/clock/internal/initramfs"
)

// futureDates are the dates the suite runs at: five years on, and a day
// into NTP era 1 (era 0 ends 2036-02-07T06:28:16Z).
var futureDates = []string{"2031-06-01T00:00:00Z", "2036-02-08T00:00:00Z"}

// bootTimeout bounds one guest: boot, every package's tests under TCG, and
// power-off.
const bootTimeout = 35 * time.Minute

func TestFutureDates(t *testing.T) {
	if os.Getpid() == 1 {
		t.Skip("host side of the future-date test")
	}
	if os.Getenv("TIMENODE_FUTURE_TEST") != "1" {
		t.Skip("boots qemu guests for many minutes under TCG: run `make test-future` or set TIMENODE_FUTURE_TEST=1")
	}
	qemu := testbin.NeedTool(t, "qemu-system-x86_64", "qemu-system-x86")
	goTool := testbin.NeedTool(t, "go", "golang (or a Go toolchain on PATH)")
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	kernel, out, err := guest.Kernel(filepath.Join(root, "hw/clock/qemutest/.cache"), filepath.Join(root, "hw/clock/qemutest/fetch-kernel.sh"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	work := t.TempDir()
	start := time.Now()
	initrd := buildInitramfs(t, goTool, root, work)
	t.Logf("initramfs built in %v", time.Since(start).Round(time.Second))

	// One guest after the other, each with two CPUs as the host has: the
	// batching and reload tests need real parallelism. Each guest runs two
	// packages at a time and reruns a failed test alone at its end.
	var failures, retried []string
	for i, date := range futureDates {
		t.Run(date[:10], func(t *testing.T) {
			start := time.Now()
			report, err := boot(qemu, kernel, initrd, filepath.Join(work, fmt.Sprint(i)), date)
			t.Logf("guest at %s ran for %v", date, time.Since(start).Round(time.Second))
			if err != nil {
				failures = append(failures, date[:10]+": "+err.Error())
				t.Fatal(err)
			}
			failed, again := judge(t, report)
			for _, f := range failed {
				failures = append(failures, date[:10]+" "+f)
			}
			for _, f := range again {
				retried = append(retried, date[:10]+" "+f)
			}
		})
	}
	// Every guest's retried and failed tests again, last: CI keeps only
	// the tail of a log, and the first guest's lines would otherwise
	// scroll out of it.
	if len(retried) > 0 {
		t.Logf("failed once under TCG and passed when rerun (timing, not the date):\n%s", strings.Join(retried, "\n"))
	}
	if len(failures) > 0 {
		t.Logf("failures of all guests:\n%s", strings.Join(failures, "\n"))
	}
}

// judge logs a guest's report, fails on anything but a PASS marker and
// returns the report's failure lines and its retried tests' lines.
func judge(t *testing.T, report string) (failed, retried []string) {
	t.Helper()
	got := ""
	var skips []string
	for _, line := range strings.Split(report, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, resultMarker):
			got = strings.TrimPrefix(line, resultMarker)
		case strings.HasPrefix(line, "SKIP "):
			skips = append(skips, strings.TrimPrefix(line, "SKIP "))
		case strings.HasPrefix(line, "PKG "), strings.HasPrefix(line, "CLOCK "):
			t.Log(line)
			if strings.HasPrefix(line, "PKG ") && strings.Contains(line, " FAIL ") {
				failed = append(failed, line)
			}
		case strings.HasPrefix(line, "OUT "), strings.HasPrefix(line, "ERR "):
			failed = append(failed, line)
		case strings.HasPrefix(line, "RETRY "):
			retried = append(retried, line)
		}
	}
	t.Logf("%d skipped tests (each must name the environment, never the date):\n%s", len(skips), strings.Join(skips, "\n"))
	// Failures last: a CI log shows only its tail.
	if len(retried) > 0 {
		t.Logf("retried:\n%s", strings.Join(retried, "\n"))
	}
	if len(failed) > 0 {
		t.Logf("failures:\n%s", strings.Join(failed, "\n"))
	}
	switch {
	case got == "PASS":
	case got == "":
		failed = append(failed, "the guest wrote no "+resultMarker+" line")
		t.Errorf("the guest wrote no %s line", resultMarker)
	default:
		failed = append(failed, "guest: "+got)
		t.Errorf("guest: %s", got)
	}
	return failed, retried
}

// boot runs one guest whose real-time clock starts at date and returns
// what it wrote to its second serial port.
func boot(qemu, kernel, initrd, dir, date string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	consoleLog, resultsLog := filepath.Join(dir, "console.log"), filepath.Join(dir, "results.log")
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	// -rtc base sets the emulated CMOS clock, from which the kernel sets
	// CLOCK_REALTIME at boot; clock=vm keeps it ticking with the guest.
	cmd := guest.QEMU(ctx, qemu, kernel, initrd, "console=ttyS0 panic=-1 loglevel=4 clocksource=hpet "+cmdlineDate+date,
		consoleLog, resultsLog, "-smp", "2", "-m", "2048", "-rtc", "base="+strings.TrimSuffix(date, "Z")+",clock=vm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	results, _ := os.ReadFile(resultsLog)
	if runErr != nil {
		console, _ := os.ReadFile(consoleLog)
		return string(results), fmt.Errorf("qemu at %s: %v (timeout %v)\n%s\nconsole tail:\n%s\nresults:\n%s", date, runErr, bootTimeout,
			stderr.Bytes(), strings.Join(tail(string(console), 60), "\n"), results)
	}
	return string(results), nil
}

// buildInitramfs compiles every package's tests and the two binaries
// statically and packs them, the tracked source tree and this package's own
// test binary as /init into an uncompressed initramfs (gzip would cost
// more emulated time to unpack than it saves).
func buildInitramfs(t *testing.T, goTool, root, work string) string {
	t.Helper()
	static := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	run := func(dir string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(goTool, args...)
		cmd.Dir, cmd.Env = dir, static
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}
	const module = "github.com/aunsorm/timenode/"
	list := run(root, "list", "-f", "{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}", "./...")
	var manifest strings.Builder
	bins := filepath.Join(work, "tests")
	for _, pkg := range strings.Fields(string(list)) {
		dir := strings.TrimPrefix(pkg, module)
		name := strings.ReplaceAll(dir, "/", "_") + ".test"
		run(root, "test", "-c", "-ldflags=-s -w", "-o", filepath.Join(bins, name), pkg)
		fmt.Fprintf(&manifest, "%s\t%s\n", name, dir)
	}
	run(root, "build", "-ldflags=-s -w", "-o", filepath.Join(work, "bin")+"/", "./cmd/timenoded", "./cmd/timenodectl")

	f, err := os.Create(filepath.Join(work, "initrd"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := initramfs.NewWriter(f)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"dev", "proc", "sys", "tmp", "etc", "bin", "tests", "src"} {
		must(w.Dir(d, 0o755))
	}
	must(w.CharDev("dev/console", 0o600, 5, 1))
	must(w.File("etc/hosts", 0o644, []byte("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")))
	must(w.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/tmp:/bin/sh\n")))
	must(w.File("etc/group", 0o644, []byte("root:x:0:\n")))
	// The daemon reads the leap-seconds list an appliance ships.
	if list, err := os.ReadFile("/usr/share/zoneinfo/leap-seconds.list"); err == nil {
		for _, d := range []string{"usr", "usr/share", "usr/share/zoneinfo"} {
			must(w.Dir(d, 0o755))
		}
		must(w.File("usr/share/zoneinfo/leap-seconds.list", 0o644, list))
	}
	// A static shell for the tests that run sh -c (Debian's busybox-static).
	if sh, err := os.ReadFile("/bin/busybox"); err == nil && !bytes.Contains(sh, []byte("/lib64/ld-linux")) {
		must(w.File("bin/sh", 0o755, sh))
	} else {
		t.Fatal("a static /bin/busybox is needed for the guest's /bin/sh: install the Debian package busybox-static")
	}
	for _, dirName := range []string{"bin", "tests"} {
		entries, err := os.ReadDir(filepath.Join(work, dirName))
		must(err)
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(work, dirName, e.Name()))
			must(err)
			must(w.File(dirName+"/"+e.Name(), 0o755, data))
		}
	}
	must(w.File("tests/manifest.txt", 0o644, []byte(manifest.String())))
	must(packSource(w, root))
	self := filepath.Join(work, "init")
	run(".", "test", "-c", "-ldflags=-s -w", "-o", self, ".")
	data, err := os.ReadFile(self)
	must(err)
	must(w.File("init", 0o755, data))
	must(w.Close())
	must(f.Close())
	return f.Name()
}

// packSource adds the module's files that git tracks or would track (so
// nothing built, cached or ignored comes along) under /src, directories
// first.
func packSource(w *initramfs.Writer, root string) error {
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	made := map[string]bool{}
	var mkdirs func(dir string) error
	mkdirs = func(dir string) error {
		if dir == "." || made[dir] {
			return nil
		}
		if err := mkdirs(filepath.Dir(dir)); err != nil {
			return err
		}
		made[dir] = true
		return w.Dir("src/"+dir, 0o755)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		p := filepath.Join(root, name)
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		if err := mkdirs(filepath.Dir(name)); err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := w.File("src/"+name, uint32(fi.Mode().Perm()), data); err != nil {
			return err
		}
	}
	return nil
}
