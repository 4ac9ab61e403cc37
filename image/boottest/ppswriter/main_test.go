package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/image/boottest/ppssync"
)

// session is the SSH session of the boot test, in memory: the host side
// serves ppssync from its own clock on the writer's stdout and stdin.
type session struct {
	stdin  io.Reader      // the writer's
	stdout io.Writer      // the writer's
	hangUp func()         // the host ends the session
	served chan error     // Serve's result
	hostW  *io.PipeWriter // host → guest
}

func newSession(t *testing.T, hostNow func() time.Time) *session {
	t.Helper()
	guestR, hostW := io.Pipe()
	hostR, guestW := io.Pipe()
	s := &session{stdin: guestR, stdout: guestW, served: make(chan error, 1), hostW: hostW}
	// An SSH banner and a sudo warning before anything else.
	go func() {
		io.WriteString(hostW, "Debian GNU/Linux 12\r\nsudo: unable to resolve host timenode\n")
		s.served <- ppssync.Serve(context.Background(), hostR, hostW, hostNow)
	}()
	s.hangUp = func() { hostW.Close(); hostR.Close() }
	t.Cleanup(func() {
		s.hangUp()
		guestW.Close()
	})
	return s
}

func TestRunRefuses(t *testing.T) {
	tests := []struct {
		name   string
		sysfs  func(t *testing.T) string
		port   string // "" a temp file; "default" no --port-dev
		code   int
		text   string
		noRead bool // stdin must stay untouched
	}{
		{"real hardware", func(t *testing.T) string {
			return fakeSysfs(t, "Supermicro\n", map[string]string{"pps0": "pps_parport"})
		}, "", 2, `refusing to run: not a qemu guest with a pps_parport PPS device: `, true},
		{"no pps_parport", func(t *testing.T) string {
			return fakeSysfs(t, "QEMU\n", map[string]string{"pps0": "pps-gpio"})
		}, "", 2, `no pps_parport device in`, true},
		{"default /dev/port from a test", qemuSysfs, "default", 2, "refusing to run: /dev/port from a test binary", true},
		{"/dev/port spelled otherwise", qemuSysfs, "/dev/../dev/port", 2, "refusing to run: /dev/port from a test binary", true},
		{"port device missing", qemuSysfs, "missing", 1, "no such file or directory (run as root)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--sysfs", tt.sysfs(t)}
			switch tt.port {
			case "":
				args = append(args, "--port-dev", tempPort(t))
			case "default":
			case "missing":
				args = append(args, "--port-dev", filepath.Join(t.TempDir(), "port"))
			default:
				args = append(args, "--port-dev", tt.port)
			}
			var stderr logBuf
			stdin := &untouched{t: t}
			code := run(context.Background(), args, stdin, io.Discard, &stderr, &fakeClock{tick: time.Microsecond})
			if code != tt.code || !strings.Contains(stderr.String(), tt.text) {
				t.Fatalf("run = %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.text)
			}
		})
	}
}

// untouched is a stdin that no refusal may read.
type untouched struct{ t *testing.T }

func (u *untouched) Read([]byte) (int, error) {
	u.t.Error("stdin read before the checks passed")
	return 0, io.EOF
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		args []string
		text string
	}{
		{[]string{"--offset", "1s"}, "--offset 1s: must be between -1s and 1s"},
		{[]string{"--offset", "-1.5s"}, "must be between -1s and 1s"},
		{[]string{"--count", "-1"}, "--count -1"},
		{[]string{"--rounds", "0"}, "--rounds 0"},
		{[]string{"--resync", "-1s"}, "--resync -1s"},
		{[]string{"--max-late", "0s"}, "must be positive"},
		{[]string{"--spin", "-1ms"}, "--spin -1ms"},
		{[]string{"--log-every", "0"}, "--log-every 0"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
		{[]string{"-h"}, "usage: ppswriter"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr logBuf
			code := run(context.Background(), append(tt.args, "--sysfs", qemuSysfs(t), "--port-dev", tempPort(t)),
				&untouched{t: t}, io.Discard, &stderr, &fakeClock{})
			if code != 2 || !strings.Contains(stderr.String(), tt.text) {
				t.Fatalf("run = %d, stderr %q; want 2 and %q", code, stderr.String(), tt.text)
			}
		})
	}
}

// TestRunPulses is the whole writer on a fake raw clock, with the host
// side of ppssync serving a host clock 0.4 s past a second.
func TestRunPulses(t *testing.T) {
	c := &fakeClock{now: time.Hour, tick: time.Microsecond}
	hostBase := time.Date(2036, 2, 8, 6, 28, 15, 400_000_000, time.UTC)
	s := newSession(t, func() time.Time { return hostBase.Add(c.peek() - time.Hour) })
	port := tempPort(t)
	var stderr logBuf
	code := run(context.Background(), []string{"--sysfs", qemuSysfs(t), "--port-dev", port, "--count", "3", "--offset", "-20ms"},
		s.stdin, s.stdout, &stderr, c)
	if code != 0 {
		t.Fatalf("run = %d:\n%s", code, stderr.String())
	}
	checkPortFile(t, port)
	log := stderr.String()
	for _, want := range []string{
		"qemu guest, pps0 is pps_parport; anchored: raw 1h0m0",
		"pulsing on " + port + " at every host-UTC second - 20ms\n",
		"pulse 1 for 2036-02-08T06:28:15.980000000Z at 2036-02-08T06:28:15.98000",
		"pulse 2 for 2036-02-08T06:28:16.980000000Z",
		"pulse 3 for 2036-02-08T06:28:17.980000000Z",
		"stopping after 3 pulses (0 skipped): --count reached",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not say %q:\n%s", want, log)
		}
	}
}

// TestRunStops: the writer stops cleanly, mid-run, when the SSH session
// ends (stdin EOF) or on a signal.
func TestRunStops(t *testing.T) {
	for _, how := range []string{"stdin closed", "signal"} {
		t.Run(how, func(t *testing.T) {
			c := &fakeClock{now: time.Hour, tick: time.Microsecond, throttle: time.Millisecond}
			hostBase := time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)
			s := newSession(t, func() time.Time { return hostBase.Add(c.peek()) })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stderr logBuf
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"--sysfs", qemuSysfs(t), "--port-dev", tempPort(t), "--resync", "5s"},
					s.stdin, s.stdout, &stderr, c)
			}()
			stderr.waitFor(t, "resync: step")
			if how == "signal" {
				cancel()
			} else {
				s.hangUp()
			}
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("run = %d:\n%s", code, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("run did not stop:\n%s", stderr.String())
			}
			if !strings.Contains(stderr.String(), "skipped): "+how) {
				t.Fatalf("log does not say it stopped on %s:\n%s", how, stderr.String())
			}
		})
	}
}

func TestRunNoHost(t *testing.T) {
	tests := []struct {
		name  string
		stdin func(w *io.PipeWriter)
		code  int
		text  string
	}{
		{"stdin ends before the anchor", func(w *io.PipeWriter) { io.WriteString(w, "motd\n"); w.Close() }, 0,
			"stopping before the first pulse: stdin closed (EOF)"},
		{"host never answers", func(w *io.PipeWriter) { io.WriteString(w, "motd\n") }, 1,
			"no anchor to host UTC: ppssync: no answer from the host to request 1 within 50ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w := io.Pipe()
			defer w.Close()
			go tt.stdin(w)
			var stderr logBuf
			code := run(context.Background(), []string{"--sysfs", qemuSysfs(t), "--port-dev", tempPort(t), "--sync-timeout", "50ms"},
				r, io.Discard, &stderr, &fakeClock{tick: time.Microsecond})
			if code != tt.code || !strings.Contains(stderr.String(), tt.text) {
				t.Fatalf("run = %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.text)
			}
		})
	}
}

func TestRunUncertainHost(t *testing.T) {
	// Each host clock read takes 30 ms: a round trip of 60 ms less a
	// turnaround of 30 ms, ±15 ms > --max-uncertainty.
	c := &fakeClock{tick: time.Microsecond}
	slow := func() time.Time {
		c.mu.Lock()
		c.now += 30 * time.Millisecond
		c.mu.Unlock()
		return time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC).Add(c.peek())
	}
	s := newSession(t, slow)
	var stderr logBuf
	code := run(context.Background(), []string{"--sysfs", qemuSysfs(t), "--port-dev", tempPort(t), "--max-uncertainty", "10ms"},
		s.stdin, s.stdout, &stderr, c)
	if code != 1 || !strings.Contains(stderr.String(), "best of 3 anchors was ±15.0") {
		t.Fatalf("run = %d, stderr:\n%s", code, stderr.String())
	}
}

// TestRunRealClock runs the writer on the real CLOCK_MONOTONIC_RAW (still
// against a temporary file and a fake sysfs), with the host's clock set
// 0.85 s past a second so that the pulse comes soon.
func TestRunRealClock(t *testing.T) {
	start := time.Now()
	hostBase := time.Date(2031, 6, 1, 0, 0, 0, 850_000_000, time.UTC)
	s := newSession(t, func() time.Time { return hostBase.Add(time.Since(start)) })
	port := tempPort(t)
	var stderr logBuf
	code := run(context.Background(), []string{"--sysfs", qemuSysfs(t), "--port-dev", port, "--count", "1"},
		s.stdin, s.stdout, &stderr, rawClock{})
	if code != 0 {
		t.Fatalf("run = %d:\n%s", code, stderr.String())
	}
	t.Logf("writer's log:\n%s", stderr.String())
	checkPortFile(t, port)
	if !strings.Contains(stderr.String(), "pulse 1 for 2031-06-01T00:00:0") {
		t.Fatalf("log:\n%s", stderr.String())
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %v", el)
	}
	if _, err := os.Stat(port); err != nil {
		t.Fatal(err)
	}
}
