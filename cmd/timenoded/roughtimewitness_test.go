package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc/roughtime"
	"github.com/aunsorm/timenode/timing/integrity"
)

// trueTime is the witness server's time source: a fixed instant with a
// 5 µs bound, so nothing depends on the host's clock.
type trueTime struct{ t time.Time }

func (s trueTime) Now() (time.Time, time.Duration, bool) { return s.t, 5 * time.Microsecond, true }

// nodeClock is the node's clock as the witness reads it: truth plus an
// error, advancing 200 µs per reading (the round trip).
type nodeClock struct {
	mu   sync.Mutex
	next time.Time
}

func (c *nodeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.next
	c.next = c.next.Add(200 * time.Microsecond)
	return t
}

// TestRoughtimeWitness queries two real Roughtime servers
// (netsvc/roughtime's, on loopback) through the daemon's adapter from a
// node whose clock is right, then 3 ms and 3 s off, and checks the
// measurements and the quorum verdict.
func TestRoughtimeWitness(t *testing.T) {
	truth := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		v       roughtime.Version
		nodeErr time.Duration // node − truth
		verdict integrity.WitnessVerdict
	}{
		{"google, node right", roughtime.VersionGoogle, 0, integrity.WitnessAgree},
		{"google, node 3 ms ahead", roughtime.VersionGoogle, 3 * time.Millisecond, integrity.WitnessDisagree},
		{"draft 11, node 3 ms ahead: within a second's radius", roughtime.VersionDraft11, 3 * time.Millisecond, integrity.WitnessAgree},
		{"draft 11, node 3 s behind", roughtime.VersionDraft11, -3 * time.Second, integrity.WitnessDisagree},
	}
	a1, k1 := startRoughtimeServer(t, 1, trueTime{truth})
	a2, k2 := startRoughtimeServer(t, 2, trueTime{truth})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ms []integrity.Measurement
			for i, srv := range []struct {
				addr string
				key  ed25519.PublicKey
			}{{a1, k1}, {a2, k2}} {
				// The exchange's midpoint on the node's clock is truth+err.
				clk := &nodeClock{next: truth.Add(tc.nodeErr - 100*time.Microsecond)}
				w := newRoughtimeWitness(roughtimeWitness{Addr: srv.addr, PublicKey: srv.key, Version: tc.v}, clk.now)
				w.Label = []string{"rt1", "rt2"}[i]
				ctx, cancel := context.WithTimeout(context.Background(), testbin.Wait(10*time.Second))
				m, err := w.Measure(ctx)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				// Honest witness: the true offset −nodeErr is covered.
				if lo, hi := m.Offset-m.Uncertainty, m.Offset+m.Uncertainty; -tc.nodeErr < lo || -tc.nodeErr > hi {
					t.Fatalf("%s: offset %v ± %v does not cover %v", m.Witness, m.Offset, m.Uncertainty, -tc.nodeErr)
				}
				if m.Witness != w.Name() || m.At.IsZero() {
					t.Fatalf("measurement %+v", m)
				}
				ms = append(ms, m)
			}
			now := ms[1].At
			res, _ := integrity.CheckWitnesses(now, 10*time.Microsecond, ms, integrity.WitnessConfig{})
			if res.Verdict != tc.verdict {
				t.Fatalf("verdict %v, want %v (%+v, %+v)", res.Verdict, tc.verdict, res, ms)
			}
		})
	}
}

func TestRoughtimeWitnessWrongKey(t *testing.T) {
	truth := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	addr, _ := startRoughtimeServer(t, 3, trueTime{truth})
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize))
	clk := &nodeClock{next: truth}
	w := &integrity.RoughtimeWitness{Addr: addr, Querier: roughtimeQuerier{w: roughtimeWitness{Addr: addr, PublicKey: other.Public().(ed25519.PublicKey), Version: roughtime.VersionGoogle}, now: clk.now, attempts: 1}}
	ctx, cancel := context.WithTimeout(context.Background(), testbin.Wait(10*time.Second))
	defer cancel()
	if _, err := w.Measure(ctx); err == nil {
		t.Fatal("a reply signed by another key was accepted")
	}
}
