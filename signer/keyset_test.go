package signer

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

// testCA is a CA for key set tests and the pool that trusts it.
type testCA struct {
	ca    *CA
	roots *x509.CertPool
}

func newTestCA(t *testing.T, name string, dev bool) testCA {
	t.Helper()
	ca, err := NewCA(name, dev, t0.Add(-24*time.Hour), 2*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return testCA{ca, roots}
}

// writeKeys writes a new key pair into dir under the standard names with
// prefix (as keyfile.Generate does) and returns its key id as a
// production key.
func writeKeys(t *testing.T, dir, prefix string) string {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "gen")
	if err := keyfile.Generate(tmp, rand.Reader, nil, false); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{Ed25519KeyFile, MLDSA65KeyFile} {
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(dir, prefix+name)); err != nil {
			t.Fatal(err)
		}
	}
	kp := pairFromFiles(t, dir, prefix, KeyOptions{})
	defer kp.Close()
	return kp.ID()
}

// pairFromFiles makes a key pair from dir's key files with opts, without
// the window and certificate checks of LoadKeySet.
func pairFromFiles(t *testing.T, dir, prefix string, opts KeyOptions) *KeyPair {
	t.Helper()
	var seeds [2]*lockedmem.Buffer
	for i, alg := range []keyfile.Alg{keyfile.Ed25519, keyfile.MLDSA65} {
		b, err := keyfile.LoadSeed(filepath.Join(dir, prefix+keyfile.FileName(alg)), alg, keyfile.DefaultPolicy(), lockedmem.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		seeds[i] = b
	}
	kp, err := NewKeyPair(seeds[0].Bytes(), seeds[1].Bytes(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// certify writes prefix+CertFile into dir: ca's certificate for the key
// in keysDir (dir itself unless a mismatch is wanted), for [nb, na].
func certify(t *testing.T, dir, keysDir, prefix string, ca testCA, nb, na time.Time) {
	t.Helper()
	kp := pairFromFiles(t, keysDir, prefix, KeyOptions{})
	defer kp.Close()
	csr, err := CreateCSR(kp, "node1.test")
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.ca.Issue(csr, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, prefix+CertFile), EncodeCerts(der, ca.ca.Cert.Raw), 0o644); err != nil {
		t.Fatal(err)
	}
}

// signAndVerify signs a batch of one at `at` and verifies it with the
// keys given, as a client holding them would.
func signAndVerify(t *testing.T, s *Signer, at time.Time, keys []PublicKey, production bool) (*Attestation, error) {
	t.Helper()
	c := claims()
	c.TimestampUnixNs = at.UnixNano()
	atts, err := s.Attest(c, [][]byte{[]byte("keyset nonce")})
	if err != nil {
		t.Fatalf("attest at %s: %v", at, err)
	}
	v := NewVerifier(keys)
	v.Production = production
	return atts[0], v.Verify(atts[0], at.Add(time.Second), []byte("keyset nonce"))
}

func TestLoadKeySet(t *testing.T) {
	prod := newTestCA(t, "timenode test CA", false)
	nb, na := t0.Add(-time.Hour), t0.Add(90*24*time.Hour)
	tests := []struct {
		name string
		// setup writes the files and returns the load config.
		setup   func(t *testing.T, dir string) LoadConfig
		dev     bool
		chain   int
		window  [2]time.Time
		verifyP bool // verify in production mode
	}{
		{"key directory from keyfile.Generate, no certificate: development key", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			return LoadConfig{Dir: dir, Now: t0, DevLifetime: time.Hour}
		}, true, 0, [2]time.Time{t0.Add(-DevBackdate), t0.Add(time.Hour)}, false},
		{"key directory with a production certificate, production mode", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			certify(t, dir, dir, "", prod, nb, na)
			return LoadConfig{Dir: dir, Now: t0, Production: true, Roots: prod.roots}
		}, false, 2, [2]time.Time{nb.Truncate(time.Second), na.Truncate(time.Second)}, true},
		{"credentials directory (0400/0440, as systemd makes them), production mode", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			certify(t, dir, dir, "", prod, nb, na)
			for name, mode := range map[string]os.FileMode{Ed25519KeyFile: 0o400, MLDSA65KeyFile: 0o440, CertFile: 0o440} {
				if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
					t.Fatal(err)
				}
			}
			return LoadConfig{Dir: "/nonexistent", CredentialsDir: dir, Now: t0, Production: true, Roots: prod.roots}
		}, false, 2, [2]time.Time{nb.Truncate(time.Second), na.Truncate(time.Second)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := tc.setup(t, dir)
			ks, err := LoadKeySet(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := NewSignerSet(ks, func() time.Time { return t0 })
			defer s.Close()
			pub := s.Keys()
			if len(pub) != 1 {
				t.Fatalf("%d keys published, want 1", len(pub))
			}
			k := pub[0]
			if got := strings.HasPrefix(k.ID, DevKeyPrefix); k.Development != tc.dev || got != tc.dev {
				t.Errorf("key %s: development %v, want %v", k.ID, k.Development, tc.dev)
			}
			if len(k.Chain) != tc.chain {
				t.Errorf("chain of %d certificates, want %d", len(k.Chain), tc.chain)
			}
			if !k.NotBefore.Equal(tc.window[0]) || !k.NotAfter.Equal(tc.window[1]) {
				t.Errorf("window [%s, %s], want [%s, %s]", k.NotBefore, k.NotAfter, tc.window[0], tc.window[1])
			}
			if cfg.Production && !ks.keys[0].Locked() {
				t.Error("production key not in locked memory")
			}
			if _, err := signAndVerify(t, s, t0, pub, tc.verifyP); err != nil {
				t.Fatalf("attestation by the loaded key: %v", err)
			}
		})
	}
}

func TestLoadKeySetRefusals(t *testing.T) {
	prod := newTestCA(t, "timenode test CA", false)
	devCA := newTestCA(t, "timenode test CA", true)
	other := newTestCA(t, "another CA", false)
	nb, na := t0.Add(-time.Hour), t0.Add(90*24*time.Hour)
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) LoadConfig
		wantIs  error
		wantMsg string // substring; "DIR" is replaced by the directory
	}{
		{"certificate of other keys", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			otherKeys := t.TempDir()
			writeKeys(t, otherKeys, "")
			certify(t, dir, otherKeys, "", prod, nb, na)
			return LoadConfig{Dir: dir, Now: t0, Roots: prod.roots}
		}, nil, "DIR/attestation-cert.pem does not certify the keys in DIR/signing-ed25519.pem and DIR/signing-mldsa65.pem"},
		{"production mode without the production CA", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			return LoadConfig{Dir: dir, Now: t0, Production: true}
		}, nil, "production mode needs the production CA"},
		{"production mode, development key (no certificate)", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			return LoadConfig{Dir: dir, Now: t0, Production: true, Roots: prod.roots}
		}, nil, "DIR/attestation-cert.pem: missing: production keys need their attestation certificate"},
		{"production mode, certificate from a development CA", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			certify(t, dir, dir, "", devCA, nb, na)
			return LoadConfig{Dir: dir, Now: t0, Production: true, Roots: devCA.roots}
		}, ErrDevelopmentKey, "DIR/attestation-cert.pem"},
		{"production mode, development next key", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			certify(t, dir, dir, "", prod, nb, na)
			writeKeys(t, dir, NextPrefix)
			certify(t, dir, dir, NextPrefix, devCA, nb, na)
			return LoadConfig{Dir: dir, Now: t0, Production: true, Roots: prod.roots}
		}, ErrDevelopmentKey, "DIR/next-attestation-cert.pem"},
		{"certificate from an untrusted CA", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			certify(t, dir, dir, "", other, nb, na)
			return LoadConfig{Dir: dir, Now: t0, Roots: prod.roots}
		}, ErrCertificate, "DIR/attestation-cert.pem"},
		{"world-readable key file", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			os.Chmod(filepath.Join(dir, MLDSA65KeyFile), 0o644)
			return LoadConfig{Dir: dir, Now: t0}
		}, keyfile.ErrRefused, "DIR/signing-mldsa65.pem: accessible by other users (mode 0644)"},
		{"credentials directory, world-readable key", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			os.Chmod(filepath.Join(dir, Ed25519KeyFile), 0o444)
			return LoadConfig{CredentialsDir: dir, Now: t0}
		}, keyfile.ErrRefused, "DIR/signing-ed25519.pem: accessible by other users"},
		{"corrupt key file", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			os.WriteFile(filepath.Join(dir, Ed25519KeyFile), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
			return LoadConfig{Dir: dir, Now: t0}
		}, nil, "DIR/signing-ed25519.pem"},
		{"missing key file", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			os.Remove(filepath.Join(dir, MLDSA65KeyFile))
			return LoadConfig{Dir: dir, Now: t0}
		}, os.ErrNotExist, "DIR/signing-mldsa65.pem"},
		{"next key identical to the current one", func(t *testing.T, dir string) LoadConfig {
			writeKeys(t, dir, "")
			for _, name := range []string{Ed25519KeyFile, MLDSA65KeyFile} {
				b, _ := os.ReadFile(filepath.Join(dir, name))
				os.WriteFile(filepath.Join(dir, NextPrefix+name), b, 0o600)
			}
			return LoadConfig{Dir: dir, Now: t0}
		}, nil, "is the current key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ks, err := LoadKeySet(tc.setup(t, dir))
			if err == nil {
				ks.Close()
				t.Fatal("loaded")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("err %v, want %v", err, tc.wantIs)
			}
			if want := strings.ReplaceAll(tc.wantMsg, "DIR", dir); !strings.Contains(err.Error(), want) {
				t.Errorf("err %q\ndoes not say %q", err, want)
			}
		})
	}
}
