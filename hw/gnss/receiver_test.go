package gnss

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
)

// TestReceiverPTY writes a few seconds of RMC+GGA+ZDA into a pty and checks
// the Fixes that come out of the real serial path.
func TestReceiverPTY(t *testing.T) {
	link := deviceLink(t)
	m := openPTY(t, link)
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clk := clocktest.NewManual(base.Add(300 * time.Millisecond))
	run := startReceiver(t, Config{Device: link}, clk)

	valid := []bool{false, true, true, true}
	for i, v := range valid {
		utc := base.Add(time.Duration(i) * time.Second)
		recv := utc.Add(300 * time.Millisecond)
		clk.Set(recv)
		if _, err := m.Write(burst(utc, v)); err != nil {
			t.Fatal(err)
		}
		f := waitFix(t, run.fixes, 3*time.Second)
		if !f.UTC.Equal(utc) || f.Valid != v || !f.Received.Equal(recv) || f.Flags != 0 {
			t.Errorf("second %d: got UTC %v Valid %v Received %v Flags %b, want %v %v %v 0",
				i, f.UTC, f.Valid, f.Received, f.Flags, utc, v, recv)
		}
		if f.Satellites != 8 || f.HDOP != 0.9 || f.Talker != "GP" {
			t.Errorf("second %d: got sats %d hdop %v talker %q", i, f.Satellites, f.HDOP, f.Talker)
		}
	}
	st := run.r.Stats()
	if st.SentencesOK != 12 || st.Epochs != 4 || st.State != StateOK || st.ChecksumBad != 0 {
		t.Errorf("stats = %+v, want 12 sentences, 4 epochs, state ok", st)
	}
}

// TestRunRejectsBadConfig: a configuration that can never work is
// reported at once instead of being retried.
func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no device", Config{}},
		{"parity", Config{Device: "/dev/null", Parity: 'M'}},
		{"baud", Config{Device: "/dev/null", Baud: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReceiver(tc.cfg, clocktest.NewManual(time.Unix(0, 0)), nil)
			if err := r.Run(context.Background(), make(chan Fix)); err == nil || tc.cfg.Validate() == nil {
				t.Errorf("Run = %v, Validate = %v; want both to fail", err, tc.cfg.Validate())
			}
		})
	}
}

// TestReceiverMissingDevice keeps retrying a device that does not exist,
// reports "disconnected" with the open error, and returns nil on cancel.
func TestReceiverMissingDevice(t *testing.T) {
	dev := deviceLink(t)
	run := startReceiver(t, Config{Device: dev, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
		clocktest.NewManual(time.Unix(0, 0)))
	waitFor(t, 2*time.Second, "open error", func() bool {
		return strings.Contains(run.r.Stats().LastError, "gnss: open "+dev)
	})
	if st := run.r.Stats(); st.State != StateDisconnected || st.Reconnects != 0 {
		t.Errorf("stats = %+v, want disconnected and no reconnects (never connected)", st)
	}
	run.stop()
}

// TestBackoff checks the reopen delay doubles, is capped and jittered into
// [d/2, d].
func TestBackoff(t *testing.T) {
	r := NewReceiver(Config{Device: "x", MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}, nil, nil)
	for attempt, max := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		max *= time.Millisecond
		for range 20 {
			if d := r.backoff(attempt); d < max/2 || d > max {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, max/2, max)
			}
		}
	}
}
