package main

import (
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc/roughtime"
	"github.com/aunsorm/timenode/timing/integrity"
)

// ltKey is a Roughtime long-term key from a fixed seed.
type ltKey struct{ priv ed25519.PrivateKey }

func (k ltKey) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }
func (k ltKey) Public() ed25519.PublicKey       { return k.priv.Public().(ed25519.PublicKey) }

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

func startWitnessServer(t *testing.T, seed byte, at time.Time) (string, ed25519.PublicKey) {
	t.Helper()
	key := ltKey{ed25519.NewKeyFromSeed(make32(seed))}
	s, err := roughtime.NewServer(roughtime.Config{Addr: "127.0.0.1:0", TimeSource: trueTime{at}, LongTermKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	testbin.Serve(t, "roughtime", s.Serve)
	return s.Addr().String(), key.Public()
}

func make32(b byte) []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = b
	}
	return s
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
	a1, k1 := startWitnessServer(t, 1, truth)
	a2, k2 := startWitnessServer(t, 2, truth)
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
	addr, _ := startWitnessServer(t, 3, truth)
	other := ltKey{ed25519.NewKeyFromSeed(make32(4))}
	clk := &nodeClock{next: truth}
	w := &integrity.RoughtimeWitness{Addr: addr, Querier: roughtimeQuerier{w: roughtimeWitness{Addr: addr, PublicKey: other.Public(), Version: roughtime.VersionGoogle}, now: clk.now, attempts: 1}}
	ctx, cancel := context.WithTimeout(context.Background(), testbin.Wait(10*time.Second))
	defer cancel()
	if _, err := w.Measure(ctx); err == nil {
		t.Fatal("a reply signed by another key was accepted")
	}
}
