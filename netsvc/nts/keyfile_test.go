package nts

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/signer/keyfile"
)

// keyFileServer makes a KE server (not listening) whose keys live in path.
func keyFileServer(t *testing.T, path string, clk clockwork.Clock, seed byte) (*KEServer, error) {
	t.Helper()
	return NewKEServer(Config{Certificates: []tls.Certificate{{}}, KeyFile: path, Clock: clk,
		RotateEvery: time.Hour, KeepKeys: 3, Rand: newSeededRand(seed), Log: testLogger()})
}

func mustKeyFileServer(t *testing.T, path string, clk clockwork.Clock, seed byte) *KEServer {
	t.Helper()
	s, err := keyFileServer(t, path, clk, seed)
	if err != nil {
		t.Fatalf("NewKEServer with key file: %v", err)
	}
	return s
}

func fileIDs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		ids = append(ids, strings.Fields(line)[0])
	}
	return ids
}

// TestKeyFileRestart: cookies issued before a restart (a new server from
// the same file, with other randomness) still open after it, under the
// current and the previous key; the restarted server seals with the same
// key and does not rotate; the file is mode 0600.
func TestKeyFileRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nts-cookie-keys")
	clk := clockwork.NewFakeClock()
	a := mustKeyFileServer(t, path, clk, 1)
	keys := testKeys()
	old, _ := a.keys.appendCookie(nil, &keys)
	clk.Advance(10 * time.Minute)
	if err := a.Rotate(); err != nil {
		t.Fatal(err)
	}
	cur, _ := a.keys.appendCookie(nil, &keys)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v: want mode 0600", fi, err)
	}

	clk.Advance(10 * time.Minute)
	b := mustKeyFileServer(t, path, clk, 2)
	if got, want := b.Stats().KeyIDs, a.Stats().KeyIDs; !equalIDs(got, want) {
		t.Fatalf("after restart key ids %v, want %v", got, want)
	}
	for name, c := range map[string][]byte{"previous key": old, "current key": cur} {
		if got, err := b.keys.openCookie(c); err != nil || got != keys {
			t.Errorf("cookie under the %s after restart: %v", name, err)
		}
	}
	fresh, _ := b.keys.appendCookie(nil, &keys)
	if got, err := a.keys.openCookie(fresh); err != nil || got != keys {
		t.Errorf("restarted server seals with another key: %v", err)
	}
}

func equalIDs(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestKeyFileGrace follows one cookie across restarts with the clock
// moving: a restart within the period keeps the key; a restart after it
// rotates at once (a short-lived process must not keep one key forever)
// but keeps the old key for its grace, (KeepKeys-1) * RotateEvery after
// it was retired; past the grace the key is gone from memory and file.
func TestKeyFileGrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	clk := clockwork.NewFakeClock()
	s := mustKeyFileServer(t, path, clk, 1)
	keys := testKeys()
	cookie, _ := s.keys.appendCookie(nil, &keys)
	first := s.Stats().KeyIDs[0]
	tests := []struct {
		advance   time.Duration
		wantIDs   int
		wantValid bool
	}{
		{30 * time.Minute, 1, true},  // within the period: same key
		{45 * time.Minute, 2, true},  // 1h15 old: rotated on load, old key retired at 1h
		{90 * time.Minute, 3, true},  // 2h45: rotated again; retired 1h45 ago, grace 2h
		{20 * time.Minute, 2, false}, // 3h05: retired 2h05 ago: dropped
	}
	for i, tc := range tests {
		clk.Advance(tc.advance)
		s = mustKeyFileServer(t, path, clk, byte(10+i))
		ids := s.Stats().KeyIDs
		if len(ids) != tc.wantIDs || len(fileIDs(t, path)) != tc.wantIDs {
			t.Fatalf("restart %d: key ids %v, file %v; want %d keys", i, ids, fileIDs(t, path), tc.wantIDs)
		}
		if _, err := s.keys.openCookie(cookie); (err == nil) != tc.wantValid {
			t.Fatalf("restart %d (ids %v, first %d): open %v, want valid %v", i, ids, first, err, tc.wantValid)
		}
	}
}

// TestRotationPastGraceDropsKeys: in a running server too, the timer
// rotates on the key's age and a key past its grace is dropped even when
// KeepKeys would still hold it.
func TestRotationPastGraceDropsKeys(t *testing.T) {
	clk := clockwork.NewFakeClock()
	ring, err := newKeyRing(newSeededRand(4), clk.Now, 10)
	if err != nil {
		t.Fatal(err)
	}
	ring.grace, ring.every = 2*time.Hour, time.Hour
	keys := testKeys()
	cookie, _ := ring.appendCookie(nil, &keys)
	for step, want := range []struct {
		advance time.Duration
		valid   bool
	}{
		{time.Hour, true},         // retired now
		{time.Hour, true},         // retired 1h ago
		{time.Hour - 1, true},     // 2h minus 1 ns
		{1, false},                // 2h: gone
		{10 * time.Minute, false}, // and stays gone
	} {
		clk.Advance(want.advance)
		if err := ring.rotate(); err != nil {
			t.Fatal(err)
		}
		if _, err := ring.openCookie(cookie); (err == nil) != want.valid {
			t.Fatalf("step %d, ids %v: open %v, want valid %v", step, ring.ids(), err, want.valid)
		}
	}
}

// TestKeyFileRefused: a key file others can read, or one that is not what
// we write, stops the server with an error naming the file; nothing is
// overwritten.
func TestKeyFileRefused(t *testing.T) {
	good := marshalKeyFile([]keyRecord{{id: 7, created: time.Unix(1e9, 0), secret: [keyLen]byte{1}}})
	tests := []struct {
		name  string
		data  []byte
		mode  os.FileMode
		wants []string
	}{
		{"world-readable", good, 0o644, []string{"accessible by other users", "chmod 600"}},
		{"group-readable", good, 0o640, []string{"group-readable"}},
		{"garbage", []byte("not a key file\n"), 0o600, []string{"line 1"}},
		{"truncated", good[:len(good)-10], 0o600, []string{"truncated"}},
		{"bad hex", bytes.Replace(good, []byte(" 01"), []byte(" zz"), 1), 0o600, []string{"line 2", "not hex"}},
		{"no keys", []byte(keyFileHeader + "\n"), 0o600, []string{"0 keys"}},
		{"empty", nil, 0o600, []string{"truncated"}},
		{"repeated id", append(bytes.Clone(good), good[len(keyFileHeader)+1:]...), 0o600, []string{"line 3", "repeated"}},
		{"later version", []byte("timenode-nts-cookie-keys 2\n"), 0o600, []string{"line 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nts-cookie-keys")
			if err := os.WriteFile(path, tc.data, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := keyFileServer(t, path, clockwork.NewFakeClock(), 1)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(tc.wants, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tc.data) {
				t.Errorf("refused file was rewritten")
			}
		})
	}
	if _, err := keyFileServer(t, filepath.Join(t.TempDir(), "missing-dir", "keys"), clockwork.NewFakeClock(), 1); err == nil {
		t.Error("a key file that cannot be created was accepted")
	}
	_, err := keyFileServer(t, filepath.Join(t.TempDir(), "x"), clockwork.NewFakeClock(), 1)
	if err != nil {
		t.Errorf("missing file not created: %v", err)
	}
	if p := filepath.Join(t.TempDir(), "dir"); os.Mkdir(p, 0o700) == nil {
		if _, err := keyFileServer(t, p, clockwork.NewFakeClock(), 1); !errors.Is(err, keyfile.ErrRefused) {
			t.Errorf("directory as key file: %v, want ErrRefused", err)
		}
	}
}

// TestKeyFileClockStepBack: a key made while the clock was ahead counts
// from now, so it is kept and rotates one period later, not when the
// clock catches up.
func TestKeyFileClockStepBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	ahead := clockwork.NewFakeClockAt(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	mustKeyFileServer(t, path, ahead, 1)
	clk := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := mustKeyFileServer(t, path, clk, 2)
	if got := s.keys.current().created; !got.Equal(clk.Now()) {
		t.Fatalf("future key created %v, want clamped to %v", got, clk.Now())
	}
	clk.Advance(time.Hour)
	s = mustKeyFileServer(t, path, clk, 3)
	if ids := s.Stats().KeyIDs; len(ids) != 2 {
		t.Fatalf("one period after the step key ids %v, want a rotation", ids)
	}
}

// TestRotationTimerStepBack: the running rotation never waits more than a
// period, whatever the key's creation time says.
func TestRotationTimerStepBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	mustKeyFileServer(t, path, clockwork.NewFakeClockAt(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), 1)
	pki := newTestPKI(t, "stepback")
	clk := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ke, err := NewKEServer(Config{Addr: "127.0.0.1:0", Certificates: []tls.Certificate{pki.server}, Clock: clk,
		RotateEvery: time.Hour, KeyFile: path, Rand: newSeededRand(5), Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	// Loading clamps a future key to now; make it "future" again, before
	// Serve starts the rotation loop, as a step back while running would.
	keys := append([]masterKey(nil), ke.keys.snapshot()...)
	keys[0].created = clk.Now().AddDate(4, 0, 0)
	ke.keys.keys.Store(&keys)
	if err := ke.Listen(); err != nil {
		t.Fatal(err)
	}
	testbin.Serve(t, "server", ke.Serve)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	for ke.Stats().KeyRotations != 1 {
		if ctx.Err() != nil {
			t.Fatal("no rotation one period after a clock step back")
		}
		time.Sleep(time.Millisecond)
	}
}

// FuzzParseKeyFile: the parser never panics, and what it accepts writes
// back to the same bytes (one canonical form) and parses to the same keys.
func FuzzParseKeyFile(f *testing.F) {
	f.Add(marshalKeyFile([]keyRecord{{id: 1, created: time.Unix(1e9, 5).UTC(), secret: [keyLen]byte{9}}}))
	f.Add(marshalKeyFile([]keyRecord{{id: 0xffffffff, created: time.Unix(0, 0).UTC()}, {id: 0, created: time.Unix(1, 0).UTC()}}))
	f.Add([]byte(keyFileHeader + "\n00000001 2026-01-01T00:00:00Z 00\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := parseKeyFile(data)
		if err != nil {
			return
		}
		again, err := parseKeyFile(marshalKeyFile(recs))
		if err != nil || len(again) != len(recs) {
			t.Fatalf("accepted file does not round-trip: %v", err)
		}
		for i := range recs {
			if again[i].id != recs[i].id || again[i].secret != recs[i].secret || !again[i].created.Equal(recs[i].created) {
				t.Fatalf("record %d changed in the round trip", i)
			}
		}
	})
}
