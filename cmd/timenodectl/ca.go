package main

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
)

func init() {
	register("ca", "attestation CA: create a development CA, issue node certificates, fingerprints", caCmd)
}

const caUsage = `usage:
  timenodectl ca create-dev --dir DIR [--name NAME] [--days N]
      a DEVELOPMENT CA: DIR/ca.pem and DIR/ca-key.pem (0600)
  timenodectl ca issue --dir DIR --csr FILE [--days N] [--not-before RFC3339] [--out FILE]
      certify a node's keys (CSR from "timenodectl keys csr"); prints the chain
  timenodectl ca fingerprint CERT
      the calibration fingerprint (SHA-256 of the first certificate)`

func caCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, caUsage)
		return 2
	}
	if args[0] == "fingerprint" {
		if len(args) != 2 {
			fmt.Fprintln(stderr, caUsage)
			return 2
		}
		b, err := os.ReadFile(args[1])
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl ca fingerprint: %v\n", err)
			return 1
		}
		ders, err := signer.DecodeCerts(args[1], b)
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl ca fingerprint: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, signer.Fingerprint(ders[0]))
		return 0
	}
	fs := flag.NewFlagSet("ca "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "CA directory")
	name := fs.String("name", "timenode attestation DEVELOPMENT CA", "CA subject common name")
	days := fs.Int("days", 90, "validity in days")
	csrPath := fs.String("csr", "", "certificate request (PEM)")
	notBefore := fs.String("not-before", "", "start of the certificate's window, RFC 3339 (default now)")
	out := fs.String("out", "", "output file (default stdout)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "timenodectl ca: --dir is required")
		return 2
	}
	now := time.Now()
	switch args[0] {
	case "create-dev":
		ca, err := signer.NewCA(*name, true, now, time.Duration(*days)*24*time.Hour)
		if err == nil {
			err = saveCA(*dir, ca)
		}
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl ca create-dev: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "development CA %q in %s, fingerprint %s\n", ca.Cert.Subject.CommonName, *dir, signer.Fingerprint(ca.Cert.Raw))
		return 0
	case "issue":
		start := now.Add(-time.Minute)
		if *notBefore != "" {
			t, err := time.Parse(time.RFC3339, *notBefore)
			if err != nil {
				fmt.Fprintf(stderr, "timenodectl ca issue: --not-before: %v\n", err)
				return 2
			}
			start = t
		}
		chain, err := issue(*dir, *csrPath, start, start.Add(time.Duration(*days)*24*time.Hour))
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl ca issue: %v\n", err)
			return 1
		}
		return writeOut(*out, chain, 0o644, stdout, stderr)
	}
	fmt.Fprintln(stderr, caUsage)
	return 2
}

func saveCA(dir string, ca *signer.CA) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return err
	}
	defer clear(key)
	if err := keyfile.WriteAtomic(filepath.Join(dir, "ca-key.pem"), pemBlock("PRIVATE KEY", key), 0o600); err != nil {
		return err
	}
	return keyfile.WriteAtomic(filepath.Join(dir, "ca.pem"), signer.EncodeCerts(ca.Cert.Raw), 0o644)
}

func loadCA(dir string) (*signer.CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	ders, err := signer.DecodeCerts(filepath.Join(dir, "ca.pem"), certPEM)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, "ca-key.pem")
	raw, err := keyfile.ReadSecret(keyPath, keyfile.DefaultPolicy())
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	blk, _ := pem.Decode(raw)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	edk, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: %T, want an Ed25519 CA key", keyPath, k)
	}
	return &signer.CA{Cert: cert, Key: edk}, nil
}

func issue(dir, csrPath string, notBefore, notAfter time.Time) ([]byte, error) {
	ca, err := loadCA(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(csrPath)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%s: no CERTIFICATE REQUEST PEM block", csrPath)
	}
	der, err := ca.Issue(blk.Bytes, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	return signer.EncodeCerts(der, ca.Cert.Raw), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
