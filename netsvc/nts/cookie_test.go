package nts

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// seededRand is a deterministic, concurrency-safe randomness source for
// tests that must not depend on crypto/rand.
type seededRand struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func newSeededRand(seed byte) *seededRand {
	return &seededRand{r: rand.NewChaCha8([32]byte{seed})}
}

func (s *seededRand) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.Read(p)
}

type failingRand struct{}

func (failingRand) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func testKeys() Keys {
	var k Keys
	for i := range k.C2S {
		k.C2S[i], k.S2C[i] = byte(i), byte(100+i)
	}
	return k
}

func TestCookieRoundTrip(t *testing.T) {
	clk := clockwork.NewFakeClock()
	ring, err := newKeyRing(newSeededRand(1), clk.Now, 3)
	if err != nil {
		t.Fatal(err)
	}
	keys := testKeys()
	c, err := ring.appendCookie([]byte("x"), &keys)
	if err != nil || len(c) != 1+CookieLen || c[0] != 'x' {
		t.Fatalf("cookie %x, %v", c, err)
	}
	cookie := c[1:]
	got, err := ring.openCookie(cookie)
	if err != nil || got != keys {
		t.Fatalf("open: %+v, %v", got, err)
	}
	// Two cookies for the same keys differ (random nonce), so a client's
	// cookies cannot be linked by an observer.
	c2, _ := ring.appendCookie(nil, &keys)
	if bytes.Equal(c2, cookie) {
		t.Fatalf("two cookies are equal")
	}
	for i := range len(cookie) * 8 {
		bad := bytes.Clone(cookie)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := ring.openCookie(bad); !errors.Is(err, errCookie) {
			t.Fatalf("bit %d flipped: %v", i, err)
		}
	}
	for _, n := range []int{0, CookieLen - 1, CookieLen + 1} {
		if _, err := ring.openCookie(make([]byte, n)); !errors.Is(err, errCookie) {
			t.Errorf("%d-byte cookie: %v", n, err)
		}
	}
}

// TestCookieGrace checks the rotation policy: a cookie stays valid while
// its key is among the last KeepKeys keys and not a rotation longer.
func TestCookieGrace(t *testing.T) {
	const keep = 3
	clk := clockwork.NewFakeClock()
	ring, err := newKeyRing(newSeededRand(2), clk.Now, keep)
	if err != nil {
		t.Fatal(err)
	}
	keys := testKeys()
	cookie, _ := ring.appendCookie(nil, &keys)
	first := ring.ids()[0]
	for rotation := 1; rotation <= keep; rotation++ {
		if err := ring.rotate(); err != nil {
			t.Fatal(err)
		}
		ids := ring.ids()
		if len(ids) != min(rotation+1, keep) || ids[0] != first+uint32(rotation) {
			t.Fatalf("after %d rotations key ids %v", rotation, ids)
		}
		_, err := ring.openCookie(cookie)
		if valid := rotation < keep; (err == nil) != valid {
			t.Fatalf("after %d rotations: open %v, want valid %v", rotation, err, valid)
		}
		// New cookies use the newest key.
		fresh, _ := ring.appendCookie(nil, &keys)
		if got, err := ring.openCookie(fresh); err != nil || got != keys {
			t.Fatalf("fresh cookie after %d rotations: %v", rotation, err)
		}
	}
}

func TestKeyRingRandFailure(t *testing.T) {
	if _, err := newKeyRing(failingRand{}, time.Now, 2); err == nil {
		t.Fatal("key ring created without randomness")
	}
	if _, err := NewKEServer(Config{Certificates: []tls.Certificate{{}}, Rand: failingRand{}}); err == nil {
		t.Fatal("KE server created without randomness")
	}
}

// TestRotationTimer drives Serve's rotation timer with a fake clock: each
// period rotates once, and Rotate called directly (as on reload) does too.
func TestRotationTimer(t *testing.T) {
	pki := newTestPKI(t, "rotate")
	clk := clockwork.NewFakeClock()
	ke := startKE(t, Config{Certificates: []tls.Certificate{pki.server}, Clock: clk, RotateEvery: time.Hour, KeepKeys: 2,
		Rand: newSeededRand(3)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("rotation ticker never started: %v", err)
	}
	first := ke.Stats().KeyIDs[0]
	for i := 1; i <= 3; i++ {
		clk.Advance(time.Hour)
		for ke.Stats().KeyRotations != uint64(i) {
			if ctx.Err() != nil {
				t.Fatalf("no rotation %d after the period", i)
			}
			time.Sleep(time.Millisecond)
		}
		if ids := ke.Stats().KeyIDs; len(ids) != 2 || ids[0] != first+uint32(i) {
			t.Fatalf("after rotation %d key ids %v", i, ids)
		}
	}
	if err := ke.Rotate(); err != nil || ke.Stats().KeyRotations != 4 {
		t.Fatalf("Rotate: %v, %d rotations", err, ke.Stats().KeyRotations)
	}
}

func TestNewKEServerConfig(t *testing.T) {
	cert := []tls.Certificate{{}}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no certificate", Config{}},
		{"bad address", Config{Certificates: cert, Addr: "4460"}},
		{"bad port", Config{Certificates: cert, NTPPort: 70000}},
		{"too many cookies", Config{Certificates: cert, Cookies: MaxReplyCookies + 1}},
		{"negative timeout", Config{Certificates: cert, IOTimeout: -time.Second}},
	} {
		if _, err := NewKEServer(tc.cfg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	s, err := NewKEServer(Config{Certificates: cert})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Addr != DefaultAddr || s.cfg.Cookies != DefaultCookies || s.cfg.KeepKeys != DefaultKeepKeys ||
		s.cfg.RotateEvery != DefaultRotateEvery || s.Addr() != nil {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
}
