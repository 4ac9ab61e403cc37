package devtls

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGenerateVerifiesAndWritesFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	m, err := Generate(dir, []string{"localhost", "127.0.0.1", "::1"}, now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(m.Server.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(m.CA)
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, CurrentTime: now}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool, CurrentTime: now}); err == nil {
		t.Error("certificate verified for a host it was not made for")
	}
	if !strings.Contains(leaf.Subject.CommonName, "DEVELOPMENT") || !strings.Contains(m.CA.Subject.CommonName, "DEVELOPMENT") {
		t.Errorf("subjects %q / %q not marked DEVELOPMENT", leaf.Subject.CommonName, m.CA.Subject.CommonName)
	}
	for name, want := range map[string]os.FileMode{CAFile: 0o644, CertFile: 0o644, KeyFile: 0o600, ClientCertFile: 0o644, ClientKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
}
