package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/image/boottest/ppssync"
)

// day is the host's date in these tests: no test depends on today's.
var day = time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)

// secs is host time day + s seconds.
func secs(s float64) time.Time { return day.Add(time.Duration(s * float64(time.Second))) }

// rawS is a raw-clock reading of s seconds.
func rawS(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// testAnchor: raw 10 s is host 00:00:07.25.
var testAnchor = ppssync.Anchor{Raw: 10 * time.Second, Host: secs(7.25), Uncertainty: 100 * time.Microsecond, Exchanges: 8}

// newTestWriter is a writer on a fake clock at raw 10 s (tick 1 µs) and a
// recording port.
func newTestWriter(log io.Writer) (*writer, *fakeClock, *recPort) {
	c := &fakeClock{now: 10 * time.Second, tick: time.Microsecond}
	p := &recPort{clock: c}
	return &writer{
		clock: c, port: p, log: log,
		count: 3, maxLate: 50 * time.Millisecond, spin: 2 * time.Millisecond,
		maxUnc: 10 * time.Millisecond, logEvery: 1, anchoredRaw: 10 * time.Second,
	}, c, p
}

// pulsesOf groups recorded writes into pulses, checking that each is
// exactly pulseWrites, and returns when each started.
func pulsesOf(t *testing.T, writes []write) []time.Duration {
	t.Helper()
	if len(writes)%len(pulseWrites) != 0 {
		t.Fatalf("%d writes, not a whole number of pulses: %+v", len(writes), writes)
	}
	var starts []time.Duration
	for i := 0; i < len(writes); i += len(pulseWrites) {
		for j, want := range pulseWrites {
			if got := writes[i+j]; got.off != want.off || got.b != want.b {
				t.Fatalf("write %d = %#02x at %#x, want %#02x at %#x", i+j, got.b, got.off, want.b, want.off)
			}
		}
		starts = append(starts, writes[i].at)
	}
	return starts
}

func TestWriterSchedule(t *testing.T) {
	tests := []struct {
		name    string
		offset  time.Duration
		rate    float64
		over    map[int]time.Duration // oversleep of the n-th Sleep
		want    []time.Duration       // raw time of each pulse
		late    []time.Duration       // how late each pulse was (default ~0)
		skipped []string              // host times of skipped seconds
	}{
		{
			name: "on the second",
			want: []time.Duration{rawS(10.75), rawS(11.75), rawS(12.75)},
		},
		{
			name: "offset that is due right away", offset: 250 * time.Millisecond,
			want: []time.Duration{rawS(10), rawS(11), rawS(12)},
		},
		{
			name: "negative offset", offset: -100 * time.Millisecond,
			want: []time.Duration{rawS(10.65), rawS(11.65), rawS(12.65)},
		},
		{
			name: "late within the limit is emitted",
			over: map[int]time.Duration{1: 30 * time.Millisecond},
			want: []time.Duration{rawS(10.75), rawS(11.75), rawS(12.75)},
			late: []time.Duration{0, 28 * time.Millisecond, 0},
		},
		{
			name:    "late wake-up skips the second",
			over:    map[int]time.Duration{1: 80 * time.Millisecond},
			want:    []time.Duration{rawS(10.75), rawS(12.75), rawS(13.75)},
			skipped: []string{"2031-06-01T00:00:09.000000000Z: woke 78.0"},
		},
		{
			name:    "wake-up after the next second skips to the one after",
			over:    map[int]time.Duration{1: 1300 * time.Millisecond},
			want:    []time.Duration{rawS(10.75), rawS(13.75), rawS(14.75)},
			skipped: []string{"2031-06-01T00:00:09.000000000Z: woke 1.298"},
		},
		{
			name: "host clock runs 100 ppm fast", rate: 100e-6,
			want: []time.Duration{rawS(10.749925007), rawS(11.749825017), rawS(12.749725027)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			w, _, p := newTestWriter(&log)
			w.offset = tt.offset
			w.clock.(*fakeClock).over = tt.over
			if err := w.run(context.Background(), testAnchor.WithRate(tt.rate)); err != nil {
				t.Fatalf("run: %v", err)
			}
			got := pulsesOf(t, p.recorded())
			if len(got) != len(tt.want) || w.emitted != len(tt.want) {
				t.Fatalf("%d pulses (emitted %d) at %v, want %v", len(got), w.emitted, got, tt.want)
			}
			for i := range got {
				var late time.Duration
				if tt.late != nil {
					late = tt.late[i]
				}
				if d := got[i] - tt.want[i] - late; d < 0 || d > 10*time.Microsecond {
					t.Errorf("pulse %d at raw %v, want %v (+%v late)", i+1, got[i], tt.want[i], late)
				}
			}
			if w.skipped != len(tt.skipped) {
				t.Errorf("skipped %d, want %d", w.skipped, len(tt.skipped))
			}
			for _, s := range tt.skipped {
				if !strings.Contains(log.String(), "skipped the pulse for "+s) {
					t.Errorf("log does not say %q:\n%s", s, log.String())
				}
			}
			if n := strings.Count(log.String(), "ppswriter: pulse "); n != len(tt.want) {
				t.Errorf("%d pulse lines in the log, want %d:\n%s", n, len(tt.want), log.String())
			}
		})
	}
}

func TestWriterLog(t *testing.T) {
	var log strings.Builder
	w, _, _ := newTestWriter(&log)
	w.count, w.logEvery = 25, 10
	if err := w.run(context.Background(), testAnchor); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("log lines %q, want pulses 1, 10 and 20", lines)
	}
	want := "ppswriter: pulse 1 for 2031-06-01T00:00:08.000000000Z at 2031-06-01T00:00:08.00000"
	if !strings.HasPrefix(lines[0], want) || !strings.Contains(lines[0], "(late ") || !strings.Contains(lines[0], "µs, write ") {
		t.Errorf("first line %q, want it to start %q and give the lateness and write time", lines[0], want)
	}
	if !strings.HasPrefix(lines[1], "ppswriter: pulse 10 for 2031-06-01T00:00:17.") || !strings.HasPrefix(lines[2], "ppswriter: pulse 20 ") {
		t.Errorf("lines %q, want pulses 10 and 20", lines[1:])
	}
}

// TestWriterFilePort writes pulses to a temporary file standing in for
// /dev/port with pwrite, as the real writer does.
func TestWriterFilePort(t *testing.T) {
	path := tempPort(t)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, c, _ := newTestWriter(io.Discard)
	rec := &recPort{clock: c, next: f}
	w.port = rec
	if err := w.run(context.Background(), testAnchor); err != nil {
		t.Fatal(err)
	}
	if got := pulsesOf(t, rec.recorded()); len(got) != 3 {
		t.Fatalf("%d pulses, want 3", len(got))
	}
	checkPortFile(t, path)
}

func TestWriterPortErrors(t *testing.T) {
	tests := []struct {
		name    string
		failAt  int
		failErr error
		text    string
	}{
		{"data register", 1, os.ErrPermission, "write 0x55 to port 0x378: permission denied"},
		{"strobe", 2, errors.New("EIO"), "write 0x1d to port 0x37a: EIO"},
		{"short write", 6, nil, "write 0x1c to port 0x37a: short write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, c, _ := newTestWriter(io.Discard)
			w.port = &recPort{clock: c, failAt: tt.failAt, failErr: tt.failErr}
			err := w.run(context.Background(), testAnchor)
			if err == nil || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("run = %v, want an error saying %q", err, tt.text)
			}
		})
	}
}

func TestWriterResync(t *testing.T) {
	tests := []struct {
		name string
		// resync answers the n-th call (from 0) at raw now, given the
		// anchor the run started with.
		resync func(n int, now time.Duration) (ppssync.Anchor, error)
		want   []time.Duration // raw time of each pulse
		calls  int
		log    string
	}{
		{
			name: "host clock stepped back 3 ms",
			resync: func(_ int, now time.Duration) (ppssync.Anchor, error) {
				return ppssync.Anchor{Raw: now, Host: testAnchor.HostTime(now).Add(-3 * time.Millisecond), Uncertainty: 100 * time.Microsecond}, nil
			},
			want:  []time.Duration{rawS(10.75), rawS(11.75), rawS(12.75), rawS(13.753), rawS(14.753)},
			calls: 1, log: "resync: step -3ms, ±100µs",
		},
		{
			name: "failures keep the anchor and retry after each pulse",
			resync: func(int, time.Duration) (ppssync.Anchor, error) {
				return ppssync.Anchor{}, fmt.Errorf("%w to request 9", ppssync.ErrTimeout)
			},
			want:  []time.Duration{rawS(10.75), rawS(11.75), rawS(12.75), rawS(13.75), rawS(14.75)},
			calls: 2, log: "resync failed, keeping the anchor (retry after the next pulse): ppssync: no answer from the host to request 9",
		},
		{
			name: "uncertain anchors are rejected",
			resync: func(_ int, now time.Duration) (ppssync.Anchor, error) {
				return ppssync.Anchor{Raw: now, Host: testAnchor.HostTime(now).Add(-time.Second), Uncertainty: 20 * time.Millisecond}, nil
			},
			want:  []time.Duration{rawS(10.75), rawS(11.75), rawS(12.75), rawS(13.75), rawS(14.75)},
			calls: 2, log: "resync rejected: ±20ms exceeds the limit of 10ms",
		},
		{
			name: "a rejection then a good one",
			resync: func(n int, now time.Duration) (ppssync.Anchor, error) {
				unc := 100 * time.Microsecond
				if n == 0 {
					unc = time.Second
				}
				return ppssync.Anchor{Raw: now, Host: testAnchor.HostTime(now).Add(2 * time.Millisecond), Uncertainty: unc}, nil
			},
			want:  []time.Duration{rawS(10.75), rawS(11.75), rawS(12.75), rawS(13.75), rawS(14.748)},
			calls: 2, log: "resync: step 2ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			w, c, p := newTestWriter(&log)
			w.count, w.every = 5, 2*time.Second
			calls := 0
			w.resync = func(ctx context.Context) (ppssync.Anchor, error) {
				if _, ok := ctx.Deadline(); !ok {
					t.Error("resync without a deadline")
				}
				calls++
				return tt.resync(calls-1, c.peek())
			}
			if err := w.run(context.Background(), testAnchor); err != nil {
				t.Fatal(err)
			}
			got := pulsesOf(t, p.recorded())
			if len(got) != len(tt.want) {
				t.Fatalf("%d pulses at %v, want %v", len(got), got, tt.want)
			}
			for i := range got {
				if d := got[i] - tt.want[i]; d < 0 || d > 10*time.Microsecond {
					t.Errorf("pulse %d at raw %v, want %v", i+1, got[i], tt.want[i])
				}
			}
			if calls != tt.calls {
				t.Errorf("%d resyncs, want %d", calls, tt.calls)
			}
			if !strings.Contains(log.String(), tt.log) {
				t.Errorf("log does not say %q:\n%s", tt.log, log.String())
			}
		})
	}
}

// TestWriterDrift: the raw clock runs 20 ppm slow against the host. The
// first minute's pulses drift late (1.2 ms by its end); resyncs measure
// the rate against the first anchor and the pulses after them stay on the
// host's seconds.
func TestWriterDrift(t *testing.T) {
	const rate = 20e-6
	truth := testAnchor.WithRate(rate) // the host's real time at each raw reading
	var log strings.Builder
	w, c, p := newTestWriter(&log)
	w.count, w.every, w.logEvery = 150, time.Minute, 1000
	w.resync = func(context.Context) (ppssync.Anchor, error) {
		now := c.peek()
		return ppssync.Anchor{Raw: now, Host: truth.HostTime(now), Uncertainty: time.Microsecond}, nil
	}
	if err := w.run(context.Background(), testAnchor); err != nil {
		t.Fatal(err)
	}
	starts := pulsesOf(t, p.recorded())
	if len(starts) != 150 {
		t.Fatalf("%d pulses", len(starts))
	}
	errAt := func(i int) time.Duration {
		h := truth.HostTime(starts[i])
		return h.Sub(h.Truncate(time.Second))
	}
	// Pulse 61, 60.75 raw seconds after the anchor, comes just before the
	// first resync, 1.2 ms late by host time.
	if e := errAt(60); e < 1190*time.Microsecond || e > 1230*time.Microsecond {
		t.Errorf("pulse 61 at host second + %v, want about 1.215ms", e)
	}
	// Once the rate is known, pulses stay on the host's seconds.
	for i := 61; i < len(starts); i++ {
		if e := errAt(i); e > 20*time.Microsecond {
			t.Fatalf("pulse %d at host second + %v, want within 20µs", i+1, e)
		}
	}
	if !strings.Contains(log.String(), "rate +20.000ppm") {
		t.Errorf("log does not give the measured rate:\n%s", log.String())
	}
}

// TestWriterStops: a done context ends the run cleanly, with no pulse
// half written.
func TestWriterStops(t *testing.T) {
	w, c, p := newTestWriter(io.Discard)
	w.count = 0
	ctx, cancel := context.WithCancel(context.Background())
	c.throttle = time.Millisecond
	time.AfterFunc(30*time.Millisecond, cancel)
	if err := w.run(ctx, testAnchor); err != nil {
		t.Fatalf("run = %v, want nil", err)
	}
	pulsesOf(t, p.recorded())
}

// The real port is an *os.File: WriteAt is pwrite(2).
var _ Port = (*os.File)(nil)
