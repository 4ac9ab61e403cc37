package certaudit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// File is one file met while walking: what it held, or why it could not
// be read.
type File struct {
	Path    string `json:"path"`
	Format  string `json:"format"`            // "pem", "der", or "" when nothing parsed
	SHA256  string `json:"sha256,omitempty"`  // set for CA bundles
	Problem string `json:"problem,omitempty"` // unreadable, not a certificate, broken PEM
	certs   []*x509.Certificate
}

// Certificates returns what was parsed from the file, in file order.
func (f *File) Certificates() []*x509.Certificate { return f.certs }

// Scan walks dir and parses every regular file in it. Problems with one
// file are recorded in that File; the error is only for dir itself.
func Scan(dir string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			files = append(files, File{Path: path, Problem: fmt.Sprintf("unreadable: %v", err)})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			files = append(files, File{Path: path, Problem: fmt.Sprintf("unreadable: %v", rerr)})
			return nil
		}
		files = append(files, ParseFile(path, b))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("certaudit: walk %s: %w", dir, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// ParseFile reads the certificates in b: PEM (any number of blocks, other
// block types ignored) or DER (one or several concatenated certificates).
func ParseFile(path string, b []byte) File {
	f := File{Path: path}
	if bytes.Contains(b, []byte("-----BEGIN")) {
		f.Format = "pem"
		f.certs, f.Problem = parsePEM(b)
	} else if certs, err := x509.ParseCertificates(b); err == nil && len(certs) > 0 {
		f.Format = "der"
		f.certs = certs
	} else {
		f.Problem = "not a certificate (neither PEM nor DER X.509)"
	}
	for _, c := range f.certs {
		if c.IsCA {
			sum := sha256.Sum256(b)
			f.SHA256 = hex.EncodeToString(sum[:])
			break
		}
	}
	return f
}

func parsePEM(b []byte) ([]*x509.Certificate, string) {
	var (
		certs    []*x509.Certificate
		problems []error
		others   []string
	)
	rest := b
	for {
		i := bytes.Index(rest, []byte("-----BEGIN"))
		if i < 0 {
			break
		}
		block, r := pem.Decode(rest[i:])
		if block == nil {
			problems = append(problems, fmt.Errorf("broken PEM block at byte %d", len(b)-len(rest)+i))
			rest = rest[i+len("-----BEGIN"):]
			continue
		}
		rest = r
		if block.Type != "CERTIFICATE" {
			others = append(others, block.Type)
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			problems = append(problems, fmt.Errorf("certificate %d: %w", len(certs)+len(problems), err))
			continue
		}
		certs = append(certs, c)
	}
	switch {
	case len(problems) > 0:
		return certs, errors.Join(problems...).Error()
	case len(certs) == 0 && len(others) > 0:
		return nil, fmt.Sprintf("no certificate (PEM blocks: %v)", others)
	case len(certs) == 0:
		return nil, "no certificate"
	}
	return certs, ""
}

// SANs lists the subject alternative names as "DNS:…", "IP:…", "URI:…",
// "email:…".
func SANs(c *x509.Certificate) []string {
	var out []string
	for _, n := range c.DNSNames {
		out = append(out, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	for _, u := range c.URIs {
		out = append(out, "URI:"+u.String())
	}
	for _, e := range c.EmailAddresses {
		out = append(out, "email:"+e)
	}
	return out
}

// KeyInfo names the public key algorithm and its size in bits.
func KeyInfo(c *x509.Certificate) (string, int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	}
	return c.PublicKeyAlgorithm.String(), 0
}
