package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc"
	"github.com/aunsorm/timenode/netsvc/roughtime"
)

// offsetTime is a witness's time: true time (the simulation's, the host
// clock, only read) plus an error, with a 10 µs radius.
type offsetTime struct{ off time.Duration }

func (o offsetTime) Now() (time.Time, time.Duration, bool) {
	return time.Now().Add(o.off), 10 * time.Microsecond, true
}

// startWitness runs a Google-Roughtime server on loopback and returns its
// --witness-roughtime flag value.
func startWitness(t *testing.T, seed byte, off time.Duration) string {
	t.Helper()
	addr, pub := startRoughtimeServer(t, seed, offsetTime{off})
	return addr + "=" + base64.StdEncoding.EncodeToString(pub) + ",google"
}

// startRoughtimeServer runs netsvc/roughtime's server on loopback with a
// long-term key from a fixed seed and returns its address and public key.
func startRoughtimeServer(t *testing.T, seed byte, src roughtime.TimeSource) (string, ed25519.PublicKey) {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	key := memKey{ed25519.NewKeyFromSeed(s)}
	srv, err := roughtime.NewServer(roughtime.Config{Addr: "127.0.0.1:0", TimeSource: src, LongTermKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	testbin.Serve(t, "roughtime witness", srv.Serve)
	return srv.Addr().String(), key.Public()
}

// TestEndToEndIntegrityWitnesses runs `timenoded --sim` with two Roughtime
// witnesses on loopback. Witnesses that agree with true time leave the node
// trusted and are exported; a quorum that places true time 5 ms from the
// node's (what a drag too slow for the local checks ends up as) makes it
// untrusted, and it stops following GNSS.
func TestEndToEndIntegrityWitnesses(t *testing.T) {
	if testbin.Emulated() {
		// The environment, not the date: the PPS check's noise model is
		// fixed (docs/INTEGRITY.md), and on an emulated CPU the simulated
		// pulses' user-space timestamps jitter by milliseconds, which it
		// rightly calls implausible for a TCXO.
		t.Skip("emulated CPU: simulated PPS timestamps jitter by milliseconds, far beyond the microseconds the PPS check's noise model allows, calibrated or not; enforcement is tested on the host")
	}
	tests := []struct {
		name   string
		off    time.Duration
		state  string
		reason string
	}{
		{"witnesses agree", 0, "trusted", ""},
		{"a quorum disagrees", 5 * time.Millisecond, "untrusted", "witness/quorum_disagrees"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w1, w2 := startWitness(t, 1, tt.off), startWitness(t, 2, tt.off)
			d := startSim(t, simOptions{args: []string{"--integrity", "enforce", "--witness-roughtime", w1, "--witness-roughtime", w2, "--witness-interval", "1s"}})
			d.waitHealthy(t, 60*time.Second)
			series := fmt.Sprintf(`timenode_integrity_witness_offset_seconds{witness="%s"}`, strings.SplitN(w1, "=", 2)[0])
			deadline := time.Now().Add(testbin.Wait(20 * time.Second))
			for d.metric(t, series) == -1 {
				if time.Now().After(deadline) {
					t.Fatalf("no %s within 20 s", series)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if tt.state == "trusted" {
				time.Sleep(testbin.Wait(5 * time.Second))
				h := d.health(t)
				if h.Integrity == nil || h.Integrity.State != "trusted" {
					t.Fatalf("agreeing witnesses: integrity %+v, want trusted", h.Integrity)
				}
				// Info (witnesses_insufficient until both answered) is fine.
				for _, e := range h.Integrity.Evidence {
					if e.Level != "info" {
						t.Errorf("agreeing witnesses raised %s/%s (%s)", e.Detector, e.Reason, e.Level)
					}
				}
				d.checkWitnessNear(t, series)
				return
			}
			h := d.waitIntegrity(t, 20*time.Second, "quorum", func(h netsvc.Health) bool { return h.Integrity.State == tt.state })
			if !hasReason(h.Integrity.Reasons, tt.reason) {
				t.Errorf("evidence %v, want %s", h.Integrity.Reasons, tt.reason)
			}
			d.waitIntegrity(t, 10*time.Second, "holdover", func(h netsvc.Health) bool { return h.Clock.State == "HOLDOVER" && !h.Integrity.FollowingGNSS })
		})
	}
}

// TestEndToEndSimWitnesses: --sim-witnesses starts Roughtime servers of
// the simulation's true time on loopback and makes them witnesses. The
// node asks every one, their offsets place it within a millisecond of
// true time, and it stays trusted. --sim-witnesses without --sim is
// refused.
func TestEndToEndSimWitnesses(t *testing.T) {
	if testbin.Emulated() {
		t.Skip("emulated CPU: simulated PPS timestamps jitter by milliseconds, far beyond the microseconds the PPS check's noise model allows, calibrated or not; enforcement is tested on the host")
	}
	d := startSim(t, simOptions{args: []string{"--integrity", "enforce", "--sim-witnesses", "3", "--witness-interval", "1s"}})
	d.waitHealthy(t, 60*time.Second)
	addrs := regexp.MustCompile(`msg="simulated witness" addr=(127\.0\.0\.1:\d+)`).FindAllStringSubmatch(d.log.String(), -1)
	if len(addrs) != 3 {
		t.Fatalf("%d simulated witnesses logged, want 3:\n%s", len(addrs), d.log.String())
	}
	for _, a := range addrs {
		series := fmt.Sprintf(`timenode_integrity_witness_offset_seconds{witness="%s"}`, a[1])
		deadline := time.Now().Add(testbin.Wait(20 * time.Second))
		for d.metric(t, series) == -1 {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 20 s", series)
			}
			time.Sleep(200 * time.Millisecond)
		}
		d.checkWitnessNear(t, series)
		if up := d.metric(t, fmt.Sprintf(`timenode_integrity_witness_up{witness="%s"}`, a[1])); up != 1 {
			t.Errorf("witness %s answered, but its up series is %v", a[1], up)
		}
	}
	h := d.health(t)
	if h.Integrity == nil || h.Integrity.State != "trusted" {
		t.Fatalf("witnesses of the true time: integrity %+v, want trusted", h.Integrity)
	}
	// /health lists them in the order they were configured, all answering.
	var listed []string
	for _, w := range h.Integrity.Witnesses {
		if w.Up {
			listed = append(listed, w.Name)
		}
	}
	if want := []string{addrs[0][1], addrs[1][1], addrs[2][1]}; !slices.Equal(listed, want) {
		t.Errorf("/health integrity.witnesses %+v, want %v all up", h.Integrity.Witnesses, want)
	}
}

// checkWitnessNear checks that a witness places the locked node within
// 1 ms of true time. One scrape gives the latest measurement's offset
// (series) with its own uncertainty, the radius and half the round trip:
// on a loaded CI host one read 1.46 ms just after the node locked at
// 300 ns. The offset must be within 1 ms and that uncertainty.
func (d *simDaemon) checkWitnessNear(t *testing.T, series string) {
	t.Helper()
	v := d.metrics(t, series, strings.Replace(series, "_offset_", "_uncertainty_", 1))
	if v[1] < 0 || math.Abs(v[0]) > 0.001+v[1] {
		t.Errorf("%s: offset %v s ± %v s, want within 1 ms of a locked node", series, v[0], v[1])
	}
}
