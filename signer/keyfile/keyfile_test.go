package keyfile

import (
	"bytes"
	"crypto/rand"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer/lockedmem"
)

func seedOf(b byte) []byte { return bytes.Repeat([]byte{b}, SeedSize) }

func writeKey(t *testing.T, path string, alg Alg, seed []byte, mode os.FileMode) {
	t.Helper()
	p, err := MarshalPEM(alg, seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSeedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []Alg{Ed25519, MLDSA65} {
		t.Run(alg.String(), func(t *testing.T) {
			path := filepath.Join(dir, FileName(alg))
			writeKey(t, path, alg, seedOf(7), 0o600)
			buf, err := LoadSeed(path, alg, DefaultPolicy(), lockedmem.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer buf.Close()
			if got := buf.Bytes(); !bytes.Equal(got, seedOf(7)) {
				t.Fatalf("seed %x, want %x", got, seedOf(7))
			}
		})
	}
}

// TestRefusals checks each refusal and that its message names the file
// and the problem.
func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	good := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		writeKey(t, p, Ed25519, seedOf(1), mode)
		return p
	}
	edPEM, _ := MarshalPEM(Ed25519, seedOf(1))
	tests := []struct {
		name   string
		setup  func(t *testing.T) string
		alg    Alg
		policy Policy
		want   []string
	}{
		{"group-readable", func(t *testing.T) string { return good("g.pem", 0o640) }, Ed25519, DefaultPolicy(),
			[]string{"g.pem", "group-readable (mode 0640)", "chmod 600"}},
		{"world-readable", func(t *testing.T) string { return good("w.pem", 0o604) }, Ed25519, DefaultPolicy(),
			[]string{"w.pem", "accessible by other users (mode 0604)"}},
		{"world-readable credential", func(t *testing.T) string { return good("wc.pem", 0o444) }, Ed25519, Policy{Credentials: true, UID: -1},
			[]string{"wc.pem", "accessible by other users (mode 0444)"}},
		{"group-writable", func(t *testing.T) string { return good("gw.pem", 0o620) }, Ed25519, DefaultPolicy(),
			[]string{"gw.pem", "group-writable"}},
		{"owned by another user", func(t *testing.T) string {
			p := good("o.pem", 0o600)
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Skipf("cannot chown as uid %d: %v", os.Geteuid(), err)
			}
			return p
		}, Ed25519, DefaultPolicy(), []string{"o.pem", "owned by uid 65534"}},
		{"other owner expected", func(t *testing.T) string { return good("ou.pem", 0o600) }, Ed25519, Policy{UID: os.Geteuid() + 1},
			[]string{"ou.pem", "owned by uid"}},
		{"symlink outside", func(t *testing.T) string {
			target := filepath.Join(outside, "real.pem")
			writeKey(t, target, Ed25519, seedOf(1), 0o600)
			link := filepath.Join(dir, "link.pem")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, Ed25519, DefaultPolicy(), []string{"link.pem", "symlink to " + target(outside), "outside"}},
		{"directory", func(t *testing.T) string {
			p := filepath.Join(dir, "adir")
			os.Mkdir(p, 0o700)
			return p
		}, Ed25519, DefaultPolicy(), []string{"adir", "not a regular file"}},
		{"truncated PEM", func(t *testing.T) string {
			p := filepath.Join(dir, "trunc.pem")
			os.WriteFile(p, edPEM[:len(edPEM)/2], 0o600)
			return p
		}, Ed25519, DefaultPolicy(), []string{"trunc.pem", "truncated"}},
		{"truncated DER", func(t *testing.T) string {
			blk, _ := pem.Decode(edPEM)
			p := filepath.Join(dir, "truncder.pem")
			os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: blk.Bytes[:len(blk.Bytes)-5]}), 0o600)
			return p
		}, Ed25519, DefaultPolicy(), []string{"truncder.pem", "truncated or malformed"}},
		{"empty", func(t *testing.T) string {
			p := filepath.Join(dir, "empty.pem")
			os.WriteFile(p, nil, 0o600)
			return p
		}, Ed25519, DefaultPolicy(), []string{"empty.pem", "no complete PEM block"}},
		{"wrong type: ed25519 as ml-dsa", func(t *testing.T) string { return good("ed.pem", 0o600) }, MLDSA65, DefaultPolicy(),
			[]string{"ed.pem", "wrong key type: Ed25519, want ML-DSA-65"}},
		{"wrong PEM type", func(t *testing.T) string {
			p := filepath.Join(dir, "cert.pem")
			os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), 0o600)
			return p
		}, Ed25519, DefaultPolicy(), []string{"cert.pem", `PEM type "CERTIFICATE"`}},
		{"ml-dsa expanded only", func(t *testing.T) string {
			inner, _ := asn1.Marshal(make([]byte, expandedSize))
			der, _ := asn1.Marshal(struct {
				V int
				A struct{ O asn1.ObjectIdentifier }
				K []byte
			}{0, struct{ O asn1.ObjectIdentifier }{OIDMLDSA65}, inner})
			p := filepath.Join(dir, "expanded.pem")
			os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
			return p
		}, MLDSA65, DefaultPolicy(), []string{"expanded.pem", "expanded-only form"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t)
			buf, err := LoadSeed(path, tt.alg, tt.policy, lockedmem.Options{})
			if err == nil {
				buf.Close()
				t.Fatalf("LoadSeed(%s) accepted the file", path)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func target(dir string) string {
	d, _ := filepath.EvalSymlinks(dir)
	return filepath.Join(d, "real.pem")
}

func TestAccepted(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		setup  func(t *testing.T) string
		policy Policy
	}{
		{"credential 0440", func(t *testing.T) string {
			p := filepath.Join(dir, "c.pem")
			writeKey(t, p, Ed25519, seedOf(2), 0o440)
			return p
		}, Policy{Credentials: true, UID: -1}},
		{"credential owned by root for a service user", func(t *testing.T) string {
			p := filepath.Join(dir, "r.pem")
			writeKey(t, p, Ed25519, seedOf(2), 0o400)
			if os.Geteuid() != 0 {
				t.Skip("needs root to make a root-owned file")
			}
			return p
		}, Policy{Credentials: true, UID: 4242}},
		{"symlink inside (Kubernetes ..data)", func(t *testing.T) string {
			os.MkdirAll(filepath.Join(dir, "..2026_11_23"), 0o700)
			writeKey(t, filepath.Join(dir, "..2026_11_23", "k.pem"), Ed25519, seedOf(2), 0o600)
			os.Symlink("..2026_11_23", filepath.Join(dir, "..data"))
			os.Symlink(filepath.Join("..data", "k.pem"), filepath.Join(dir, "k.pem"))
			return filepath.Join(dir, "k.pem")
		}, DefaultPolicy()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf, err := LoadSeed(tt.setup(t), Ed25519, tt.policy, lockedmem.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer buf.Close()
			if !bytes.Equal(buf.Bytes(), seedOf(2)) {
				t.Fatal("wrong seed")
			}
		})
	}
}

func TestDeriveSeed(t *testing.T) {
	fixed := func() *bytes.Reader { return bytes.NewReader(bytes.Repeat([]byte{9}, 64)) }
	a, _ := DeriveSeed(fixed(), []byte("seed file A, at least 32 bytes long"), Ed25519)
	b, _ := DeriveSeed(fixed(), []byte("seed file B, at least 32 bytes long"), Ed25519)
	c, _ := DeriveSeed(fixed(), []byte("seed file A, at least 32 bytes long"), MLDSA65)
	a2, _ := DeriveSeed(fixed(), []byte("seed file A, at least 32 bytes long"), Ed25519)
	r1, _ := DeriveSeed(rand.Reader, []byte("seed file A, at least 32 bytes long"), Ed25519)
	r2, _ := DeriveSeed(rand.Reader, []byte("seed file A, at least 32 bytes long"), Ed25519)
	switch {
	case !bytes.Equal(a, a2):
		t.Error("same inputs gave different seeds")
	case bytes.Equal(a, b):
		t.Error("the seed file did not change the seed")
	case bytes.Equal(a, c):
		t.Error("both algorithms got the same seed")
	case bytes.Equal(r1, r2):
		t.Error("the same seed file alone determined the seed")
	}
	if _, err := DeriveSeed(bytes.NewReader(nil), nil, Ed25519); err == nil {
		t.Error("a failing RNG was accepted")
	}
}

func TestGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := Generate(dir, rand.Reader, nil, false); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []Alg{Ed25519, MLDSA65} {
		p := filepath.Join(dir, FileName(alg))
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode().Perm())
		}
		buf, err := LoadSeed(p, alg, DefaultPolicy(), lockedmem.Options{})
		if err != nil {
			t.Fatal(err)
		}
		buf.Close()
	}
	err := Generate(dir, rand.Reader, nil, false)
	if !errors.Is(err, ErrPairExists) {
		t.Fatalf("second Generate: %v, want a refusal to overwrite", err)
	}
	if err := Generate(dir, bytes.NewReader(nil), nil, true); err == nil {
		t.Fatal("Generate with a failing RNG succeeded")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestReadSeedFile(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.bin")
	os.WriteFile(short, []byte("too short"), 0o600)
	if _, err := ReadSeedFile(short, DefaultPolicy()); err == nil || !strings.Contains(err.Error(), "short.bin: 9 bytes") {
		t.Errorf("short seed file: %v", err)
	}
	open := filepath.Join(dir, "open.bin")
	os.WriteFile(open, bytes.Repeat([]byte{1}, 64), 0o644)
	if _, err := ReadSeedFile(open, DefaultPolicy()); !errors.Is(err, ErrRefused) {
		t.Errorf("world-readable seed file: %v, want ErrRefused", err)
	}
}

// TestFIFOIsRefusedWithoutBlocking: opening a FIFO for reading blocks
// until a writer comes, which hung the daemon's start (past SIGTERM) and
// wedged its reload loop. Both readers refuse one at once.
func TestFIFOIsRefusedWithoutBlocking(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), Ed25519File)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for name, read := range map[string]func() error{
		"ReadSecret":  func() error { _, err := ReadSecret(fifo, DefaultPolicy()); return err },
		"ReadRegular": func() error { _, err := ReadRegular(fifo); return err },
		"LoadSeed": func() error {
			_, err := LoadSeed(fifo, Ed25519, DefaultPolicy(), lockedmem.Options{})
			return err
		},
	} {
		done := make(chan error, 1)
		go func() { done <- read() }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: %v, want a refusal naming the file type", name, err)
			}
		case <-time.After(time.Minute): // a bound on a hang, not a timing claim
			t.Fatalf("%s blocked on a FIFO", name)
		}
	}
	if _, err := ReadRegular(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
}
