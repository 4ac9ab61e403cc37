package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/roughtime"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// testLongTermKey is a roughtime.LongTermSigner from a fixed seed.
type testLongTermKey struct{ priv ed25519.PrivateKey }

func (k testLongTermKey) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }
func (k testLongTermKey) Public() ed25519.PublicKey       { return k.priv.Public().(ed25519.PublicKey) }

// fixedTime is a synchronized TimeSource that never moves.
type fixedTime struct {
	t     time.Time
	bound time.Duration
}

func (f fixedTime) Now() (time.Time, time.Duration, bool) { return f.t, f.bound, true }

func startRoughtime(t *testing.T, src roughtime.TimeSource, key roughtime.LongTermSigner) string {
	t.Helper()
	s, err := roughtime.NewServer(roughtime.Config{Addr: "127.0.0.1:0", TimeSource: src, LongTermKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	testbin.Serve(t, "roughtime", s.Serve)
	return s.Addr().String()
}

// TestRoughtimeQuery runs the command against the package's server: a
// verified reply prints the server's time and exits 0; a wrong key, a
// silent server or bad arguments do not.
func TestRoughtimeQuery(t *testing.T) {
	key := testLongTermKey{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
	other := testLongTermKey{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))}
	at := time.Date(2030, 6, 1, 12, 0, 0, 250_000_000, time.UTC)
	addr := startRoughtime(t, fixedTime{at, 3200 * time.Nanosecond}, key)
	pub := base64.StdEncoding.EncodeToString(key.Public())
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"draft11", []string{"query", addr, "--pubkey", pub}, 0,
			[]string{"(draft-ietf-ntp-roughtime-11), verified", "midpoint    2030-06-01T12:00:00.000000Z\n", "radius      1s\n", "round trip  ", "offset      ", "online key  "}, nil},
		{"google, flags first", []string{"query", "--version", "google", "--timeout", "5s", "--pubkey", pub, addr}, 0,
			[]string{"(Google-Roughtime), verified", "midpoint    2030-06-01T12:00:00.250000Z\n", "radius      4µs\n"}, nil},
		{"unpadded key", []string{"query", addr, "--pubkey", strings.TrimRight(pub, "="), "--version", "google"}, 0,
			[]string{"verified"}, nil},
		{"wrong key", []string{"query", addr, "--pubkey", base64.StdEncoding.EncodeToString(other.Public()), "--version", "google"}, 1,
			nil, []string{"NOT VERIFIED", "delegation signature invalid: wrong long-term key?"}},
		// A draft-11 request names the key in SRV: the server stays silent.
		{"wrong key, draft11", []string{"query", addr, "--pubkey", base64.StdEncoding.EncodeToString(other.Public()), "--timeout", "300ms"}, 1,
			nil, []string{"NOT VERIFIED", "no reply", "SRV"}},
		{"no key", []string{"query", addr}, 2, nil, []string{"--pubkey is required", "timenodectl roughtime query -h"}},
		{"short key", []string{"query", addr, "--pubkey", "AAAA"}, 2, nil, []string{"3 bytes"}},
		{"bad version", []string{"query", addr, "--pubkey", pub, "--version", "draft08"}, 2, nil, []string{`--version "draft08"`}},
		{"no address", []string{"query", "--pubkey", pub}, 2, nil, []string{"missing ADDR", "usage: timenodectl roughtime query [flags] ADDR"}},
		{"no subcommand", nil, 2, nil, []string{"usage: timenodectl roughtime SUBCOMMAND", "  query "}},
		{"help", []string{"query", "--help"}, 0, []string{"usage: timenodectl roughtime query [flags] ADDR", "--pubkey string"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(append([]string{"roughtime"}, tc.args...), &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errOut.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
		})
	}
}

// TestPrintRoughtimeOffset pins the offset line: Midpoint minus the local
// midpoint, signed, with its bound of Radius plus half the round trip.
func TestPrintRoughtimeOffset(t *testing.T) {
	sent := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		mid  time.Time
		want string
	}{
		{"local behind", sent.Add(2 * time.Second), "offset      +1.99s ±1.01s (server minus local clock)\n"},
		{"local ahead", sent.Add(-time.Second), "offset      -1.01s ±1.01s (server minus local clock)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &roughtime.Result{Version: roughtime.VersionDraft11, Midpoint: tc.mid, Radius: time.Second,
				Sent: sent, Received: sent.Add(20 * time.Millisecond), RTT: 20 * time.Millisecond, OnlineKey: make([]byte, 32)}
			var out bytes.Buffer
			printRoughtime(&out, "x:2002", r)
			if !strings.Contains(out.String(), tc.want) {
				t.Fatalf("got:\n%s", out.String())
			}
		})
	}
}
