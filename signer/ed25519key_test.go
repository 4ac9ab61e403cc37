package signer

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

// newTestLocked makes a LockedEd25519, tolerating only an mlock failure
// (CI containers often have a tiny RLIMIT_MEMLOCK).
func newTestLocked(t *testing.T, seed []byte) *LockedEd25519 {
	t.Helper()
	k, err := NewLockedEd25519(seed, lockedmem.Options{})
	if err != nil && !errors.Is(err, lockedmem.ErrLock) {
		t.Fatalf("NewLockedEd25519: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func TestLockedEd25519MatchesStdlib(t *testing.T) {
	for i, seed := range [][]byte{
		bytes.Repeat([]byte{0}, 32),
		bytes.Repeat([]byte{0xa5}, 32),
		[]byte("0123456789abcdef0123456789abcdef"),
	} {
		k := newTestLocked(t, seed)
		ref := ed25519.NewKeyFromSeed(seed)
		if !bytes.Equal(k.Public(), ref.Public().(ed25519.PublicKey)) {
			t.Fatalf("seed %d: public key differs from crypto/ed25519", i)
		}
		for _, msg := range [][]byte{nil, []byte("RoughTime v1 delegation signature--\x00"), bytes.Repeat([]byte{7}, 1000)} {
			sig, err := k.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if want := ed25519.Sign(ref, msg); !bytes.Equal(sig, want) {
				t.Fatalf("seed %d: signature differs from crypto/ed25519", i)
			}
		}
	}
}

func TestLockedEd25519Errors(t *testing.T) {
	if _, err := NewLockedEd25519(make([]byte, 31), lockedmem.Options{}); err == nil {
		t.Fatal("31-byte seed accepted")
	}
	k := newTestLocked(t, make([]byte, 32))
	pub := k.Public()
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := k.Sign([]byte("x")); !errors.Is(err, lockedmem.ErrClosed) {
		t.Fatalf("Sign after Close: %v, want ErrClosed", err)
	}
	if !bytes.Equal(k.Public(), pub) || k.Locked() {
		t.Fatal("Public must survive Close and Locked must be false after it")
	}
	var nilKey *LockedEd25519
	if nilKey.Close() != nil || nilKey.Public() != nil || nilKey.Locked() {
		t.Fatal("nil key methods")
	}
	if _, err := nilKey.Sign(nil); err == nil {
		t.Fatal("nil key signed")
	}
}

func TestLoadLockedEd25519(t *testing.T) {
	seed := bytes.Repeat([]byte{0x42}, 32)
	pemBytes, err := keyfile.MarshalPEM(keyfile.Ed25519, seed)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"private file", 0o600, true},
		{"group-readable file refused", 0o640, false},
		{"world-readable file refused", 0o644, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".pem")
			if err := os.WriteFile(path, pemBytes, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // umask-proof
				t.Fatal(err)
			}
			k, err := LoadLockedEd25519(path, keyfile.DefaultPolicy(), lockedmem.Options{})
			if !tc.ok {
				if k != nil || !errors.Is(err, keyfile.ErrRefused) {
					t.Fatalf("got key %v, err %v; want refusal", k != nil, err)
				}
				return
			}
			if err != nil && !errors.Is(err, lockedmem.ErrLock) {
				t.Fatal(err)
			}
			defer k.Close()
			want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
			if !bytes.Equal(k.Public(), want) {
				t.Fatal("loaded key has the wrong public key")
			}
			sig, err := k.Sign([]byte("m"))
			if err != nil || !ed25519.Verify(want, []byte("m"), sig) {
				t.Fatalf("loaded key does not sign: %v", err)
			}
		})
	}
	if _, err := LoadLockedEd25519(filepath.Join(dir, "missing.pem"), keyfile.DefaultPolicy(), lockedmem.Options{}); err == nil {
		t.Fatal("missing file accepted")
	}
}
