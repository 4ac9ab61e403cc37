package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/aunsorm/timenode/signer/keyfile"
)

func init() {
	certsCommands.addLeaf("csr", leaf{args: noArgs, summary: "make the node's TLS key (if missing) and a certificate request for it",
		help:  "The key is P-256, PKCS#8, mode 0600, written atomically, and never overwritten.",
		flags: certsCSR})
}

// certsCSRCmd is what first boot runs: the TLS server key is created once
// (P-256, PKCS#8, mode 0600, written atomically) and never overwritten; the
// request names the node so the service CA can issue its certificate.
func certsCSR(fs *flag.FlagSet) runFunc {
	keyPath := fs.String("key", "", "TLS private key `FILE` (created 0600 if missing; required)")
	out := fs.String("out", "", "where to write the CSR (PEM; default standard output)")
	cn := fs.String("cn", "", "subject common name (default: the host name)")
	names := fs.String("san", "", "comma-separated DNS names and IP addresses (default: the common name)")
	return func(_ []string, stdout, stderr io.Writer) int {
		if *keyPath == "" {
			return usageErr(stderr, "timenodectl certs csr", "--key is required")
		}
		if *cn == "" {
			h, err := os.Hostname()
			if err != nil {
				fmt.Fprintf(stderr, "timenodectl certs csr: --cn not given and no host name: %v\n", err)
				return 1
			}
			*cn = h
		}
		key, created, err := loadOrCreateKey(*keyPath)
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl certs csr: %v\n", err)
			return 1
		}
		tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: *cn}}
		sans := *names
		if sans == "" {
			sans = *cn
		}
		for _, n := range strings.Split(sans, ",") {
			if n = strings.TrimSpace(n); n == "" {
				continue
			}
			if ip := net.ParseIP(n); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, n)
			}
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl certs csr: %v\n", err)
			return 1
		}
		csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
		if *out == "" {
			_, _ = stdout.Write(csr)
		} else if err := keyfile.WriteAtomic(*out, csr, 0o644); err != nil {
			fmt.Fprintf(stderr, "timenodectl certs csr: %v\n", err)
			return 1
		}
		if created {
			fmt.Fprintf(stderr, "created TLS key %s\n", *keyPath)
		}
		return 0
	}
}

// loadOrCreateKey reads an existing PKCS#8 key, or creates one; an existing
// file that is not a usable key is an error, never overwritten.
func loadOrCreateKey(path string) (crypto.Signer, bool, error) {
	raw, err := keyfile.ReadSecret(path, keyfile.DefaultPolicy())
	if errors.Is(err, fs.ErrNotExist) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, false, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, err
		}
		if err := keyfile.WriteAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, false, err
		}
		return k, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, false, fmt.Errorf("%s: not a PKCS#8 PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, false, fmt.Errorf("%s: key of type %T cannot sign", path, k)
	}
	return s, false, nil
}
