// Command ppswriter plays a GNSS receiver's PPS pin inside the appliance
// boot test's qemu guest: it raises the emulated parallel port's interrupt
// once per second of the HOST's UTC, so that pps_parport gives the daemon
// under test a real kernel PPS device.
//
// It is a test fixture, never part of the image. The boot test copies the
// static binary into the guest and runs it as root over SSH, serving
// package ppssync on the session's stdin and stdout:
//
//	ppswriter [--offset 0] [--count 0] [--resync 60s] [--rounds 8] ...
//
// It refuses to run (exit 2) unless the machine is a qemu guest
// (/sys/class/dmi/id/sys_vendor is "QEMU") with a pps_parport PPS device.
// It then anchors CLOCK_MONOTONIC_RAW, which the daemon cannot steer, to
// host UTC over stdin/stdout, and at every host-UTC second plus --offset
// writes 0x55 to port 0x378 and 0x1d then 0x1c to port 0x37a through
// /dev/port (pwrite). It sleeps coarsely and reads the raw clock in a loop
// for the last --spin, and skips a second rather than pulse more than
// --max-late after it. Every --resync it re-anchors on the same stream and,
// once the span allows, corrects the raw clock's drift rate too. One line
// per pulse (see --log-every), skip and resync goes to stderr.
//
// It stops with exit status 0 after --count pulses, when stdin ends (the
// SSH session closed) or on SIGTERM, SIGINT or SIGHUP, whether or not it
// had anchored yet; 1 on a failure (no anchor to host time within
// --sync-timeout or --max-uncertainty, /dev/port); 2 on bad flags or a
// refusal.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/image/boottest/ppssync"
)

// realPortDev is the kernel's I/O port device. No test may open it: see
// the guard in run.
const realPortDev = "/dev/port"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// A host that went away makes writes to stdout fail with EPIPE instead
	// of killing the process; the end of stdin then stops it cleanly.
	signal.Ignore(syscall.SIGPIPE)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, rawClock{})
	stop()
	os.Exit(code)
}

// config is the command line.
type config struct {
	sysfs, portDev              string
	offset, resync, syncTimeout time.Duration
	maxUnc, maxLate, spin       time.Duration
	count, rounds, logEvery     int
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("ppswriter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.sysfs, "sysfs", "/sys", "root of sysfs, for the qemu and pps_parport checks")
	fs.StringVar(&c.portDev, "port-dev", realPortDev, "the I/O port device the pulses are written to")
	fs.DurationVar(&c.offset, "offset", 0, "pulse at every host-UTC second plus this (between -1s and 1s)")
	fs.IntVar(&c.count, "count", 0, "pulses to emit; 0 until stdin ends or a signal")
	fs.DurationVar(&c.resync, "resync", 60*time.Second, "re-anchor to host UTC this often; 0 never")
	fs.IntVar(&c.rounds, "rounds", 8, "exchanges per anchor; the one with the smallest round trip wins")
	fs.DurationVar(&c.syncTimeout, "sync-timeout", ppssync.DefaultTimeout, "wait this long for each answer from the host")
	fs.DurationVar(&c.maxUnc, "max-uncertainty", 10*time.Millisecond, "reject anchors less certain than this (half their round trip)")
	fs.DurationVar(&c.maxLate, "max-late", 50*time.Millisecond, "skip a second rather than pulse later than this after it")
	fs.DurationVar(&c.spin, "spin", 2*time.Millisecond, "read the raw clock in a loop for this long before each pulse")
	fs.IntVar(&c.logEvery, "log-every", 1, "log one pulse in this many (skips and resyncs always)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: ppswriter [flags]  (ppssync on stdin/stdout, log on stderr)\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.offset <= -time.Second || c.offset >= time.Second:
		return c, fmt.Errorf("--offset %v: must be between -1s and 1s", c.offset)
	case c.count < 0:
		return c, fmt.Errorf("--count %d: must not be negative", c.count)
	case c.resync < 0:
		return c, fmt.Errorf("--resync %v: must not be negative", c.resync)
	case c.rounds < 1:
		return c, fmt.Errorf("--rounds %d: must be at least 1", c.rounds)
	case c.syncTimeout <= 0, c.maxUnc <= 0, c.maxLate <= 0:
		return c, errors.New("--sync-timeout, --max-uncertainty and --max-late must be positive")
	case c.spin < 0:
		return c, fmt.Errorf("--spin %v: must not be negative", c.spin)
	case c.logEvery < 1:
		return c, fmt.Errorf("--log-every %d: must be at least 1", c.logEvery)
	}
	return c, nil
}

// run is the whole program on injected streams and clock; it returns the
// exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, clock Clock) int {
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "ppswriter: "+format+"\n", a...) }
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		logf("%v", err)
		return 2
	}
	if _, real := clock.(rawClock); real && !rawClockSupported {
		logf("refusing to run: needs Linux (CLOCK_MONOTONIC_RAW, /dev/port)")
		return 2
	}
	// Belt and braces: a test that forgot --port-dev must not poke the
	// real ports of whatever machine runs it (which may be a qemu guest
	// of the future-date test).
	if testing.Testing() && filepath.Clean(c.portDev) == realPortDev {
		logf("refusing to run: %s from a test binary (pass --port-dev)", realPortDev)
		return 2
	}
	pps, err := checkGuest(c.sysfs)
	if err != nil {
		logf("refusing to run: %v", err)
		return 2
	}
	port, err := os.OpenFile(c.portDev, os.O_WRONLY, 0)
	if err != nil {
		logf("%v (run as root)", err)
		return 1
	}
	defer port.Close()

	g := ppssync.NewGuest(stdin, stdout, clock.Now)
	g.Timeout = c.syncTimeout
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-g.Done():
			cancel()
		case <-ctx.Done():
		}
	}()

	a, err := firstAnchor(ctx, g, c, logf)
	if err != nil {
		if why := stopReason(ctx, g); why != "" {
			logf("stopping before the first pulse: %s", why)
			return 0
		}
		logf("no anchor to host UTC: %v", err)
		return 1
	}
	w := &writer{
		clock:       clock,
		port:        port,
		resync:      func(ctx context.Context) (ppssync.Anchor, error) { return g.Estimate(ctx, c.rounds) },
		log:         stderr,
		offset:      c.offset,
		count:       c.count,
		every:       c.resync,
		maxLate:     c.maxLate,
		spin:        c.spin,
		maxUnc:      c.maxUnc,
		logEvery:    c.logEvery,
		anchoredRaw: a.Raw,
	}
	at := "every host-UTC second"
	switch {
	case c.offset > 0:
		at += " + " + c.offset.String()
	case c.offset < 0:
		at += " - " + (-c.offset).String()
	}
	logf("qemu guest, %s is %s; anchored: %s; pulsing on %s at %s", pps, wantPPS, a, c.portDev, at)
	if err := w.run(ctx, a); err != nil {
		logf("stopping after %d pulses (%d skipped): %v", w.emitted, w.skipped, err)
		return 1
	}
	why := stopReason(ctx, g)
	if why == "" {
		why = "--count reached"
	}
	logf("stopping after %d pulses (%d skipped): %s", w.emitted, w.skipped, why)
	return 0
}

// stopReason says why ctx is done: stdin ended or a signal; "" while it
// is not.
func stopReason(ctx context.Context, g *ppssync.Guest) string {
	switch {
	case g.Err() != nil:
		return "stdin closed (" + g.Err().Error() + ")"
	case ctx.Err() != nil:
		return "signal"
	}
	return ""
}

// firstAnchor anchors the raw clock to host UTC, trying up to three times
// for one within --max-uncertainty.
func firstAnchor(ctx context.Context, g *ppssync.Guest, c config, logf func(string, ...any)) (ppssync.Anchor, error) {
	const tries = 3
	var best ppssync.Anchor
	for i := 0; i < tries; i++ {
		a, err := g.Estimate(ctx, c.rounds)
		if err != nil {
			return a, err
		}
		if a.Uncertainty <= c.maxUnc {
			return a, nil
		}
		if i == 0 || a.Uncertainty < best.Uncertainty {
			best = a
		}
		logf("anchor ±%v exceeds --max-uncertainty %v, trying again", a.Uncertainty, c.maxUnc)
	}
	return best, fmt.Errorf("best of %d anchors was ±%v, above --max-uncertainty %v", tries, best.Uncertainty, c.maxUnc)
}
