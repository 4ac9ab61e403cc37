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
	g := registerGroup("ca", "attestation CA: create a development CA, issue node certificates, fingerprints", 12)
	g.addLeaf("create-dev", leaf{args: noArgs, summary: "make a DEVELOPMENT CA: DIR/ca.pem and DIR/ca-key.pem (0600)",
		flags: func(fs *flag.FlagSet) runFunc {
			dir := fs.String("dir", "", "the CA directory `DIR` (required)")
			name := fs.String("name", "timenode attestation DEVELOPMENT CA", "CA subject common name")
			days := fs.Int("days", 90, "validity in days")
			return func(_ []string, stdout, stderr io.Writer) int {
				const prog = "timenodectl ca create-dev"
				if *dir == "" {
					return usageErr(stderr, prog, "--dir is required")
				}
				ca, err := signer.NewCA(*name, true, time.Now(), time.Duration(*days)*24*time.Hour)
				if err == nil {
					err = saveCA(*dir, ca)
				}
				if err != nil {
					return fail(stderr, prog, err)
				}
				fmt.Fprintf(stdout, "development CA %q in %s, fingerprint %s\n", ca.Cert.Subject.CommonName, *dir, signer.Fingerprint(ca.Cert.Raw))
				return 0
			}
		}})
	g.addLeaf("issue", leaf{args: noArgs, summary: `certify a node's keys (CSR from "timenodectl keys csr"); prints the chain`,
		flags: func(fs *flag.FlagSet) runFunc {
			dir := fs.String("dir", "", "the CA directory `DIR` (required)")
			days := fs.Int("days", 90, "validity in days")
			csrPath := fs.String("csr", "", "certificate request `FILE` (PEM, required)")
			notBefore := fs.String("not-before", "", "start of the certificate's window, RFC 3339 (default now)")
			out := fs.String("out", "", "output `FILE` (default stdout)")
			return func(_ []string, stdout, stderr io.Writer) int {
				const prog = "timenodectl ca issue"
				if *dir == "" || *csrPath == "" {
					return usageErr(stderr, prog, "--dir and --csr are required")
				}
				start := time.Now().Add(-time.Minute)
				if *notBefore != "" {
					t, err := time.Parse(time.RFC3339, *notBefore)
					if err != nil {
						return usageErr(stderr, prog, "--not-before: %v", err)
					}
					start = t
				}
				chain, err := issue(*dir, *csrPath, start, start.Add(time.Duration(*days)*24*time.Hour))
				if err != nil {
					return fail(stderr, prog, err)
				}
				return writeOut(*out, chain, 0o644, stdout, stderr)
			}
		}})
	g.addLeaf("fingerprint", leaf{use: "CERT...", args: someArgs,
		summary: "the pin clients are given (AUNSORM_CALIBRATION_FINGERPRINT): SHA-256 of the first DER certificate of each PEM file",
		help:    "Not the SHA-256 of the file: sha256sum of a PEM file gives a different value.",
		flags: func(*flag.FlagSet) runFunc {
			return func(args []string, stdout, stderr io.Writer) int {
				for _, path := range args {
					b, err := os.ReadFile(path)
					if err != nil {
						return fail(stderr, "timenodectl ca fingerprint", err)
					}
					ders, err := signer.DecodeCerts(path, b)
					if err != nil {
						return fail(stderr, "timenodectl ca fingerprint", err)
					}
					if len(args) == 1 {
						fmt.Fprintln(stdout, signer.Fingerprint(ders[0]))
					} else {
						fmt.Fprintf(stdout, "%s  %s\n", signer.Fingerprint(ders[0]), path)
					}
				}
				return 0
			}
		}})
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
