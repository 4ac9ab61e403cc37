package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCertsCSR(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "tls", "tls.key")
	out := filepath.Join(dir, "node.csr")
	var so, se bytes.Buffer
	if code := dispatch([]string{"certs", "csr", "--key", key, "--out", out, "--cn", "tn1.example", "--san", "tn1.example,10.80.0.5"}, &so, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key %v mode %v, want 0600", err, fi.Mode())
	}
	first, _ := os.ReadFile(key)
	raw, _ := os.ReadFile(out)
	b, _ := pem.Decode(raw)
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("bad CSR: %v", err)
	}
	if csr.Subject.CommonName != "tn1.example" || len(csr.DNSNames) != 1 || len(csr.IPAddresses) != 1 {
		t.Fatalf("CSR names %q %v %v", csr.Subject.CommonName, csr.DNSNames, csr.IPAddresses)
	}
	// A second run reuses the key (first boot may run again).
	if code := dispatch([]string{"certs", "csr", "--key", key, "--cn", "tn1.example"}, &so, &se); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, se.String())
	}
	if again, _ := os.ReadFile(key); !bytes.Equal(first, again) {
		t.Fatal("the existing TLS key was replaced")
	}
	// A world-readable or garbage key file is refused, not overwritten.
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"world-readable", string(first), 0o644, "readable"},
		{"not a key", "hello\n", 0o600, "not a PKCS#8"},
	} {
		p := filepath.Join(dir, tc.name+".key")
		if err := os.WriteFile(p, []byte(tc.content), tc.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, tc.mode)
		se.Reset()
		if code := dispatch([]string{"certs", "csr", "--key", p, "--cn", "x"}, &so, &se); code != 1 || !strings.Contains(se.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 naming %q", tc.name, code, se.String(), tc.want)
		}
	}
}
