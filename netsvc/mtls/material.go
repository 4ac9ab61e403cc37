package mtls

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aunsorm/timenode/signer/keyfile"
)

// Files names the PEM files of one TLS identity.
type Files struct {
	Cert     string // server certificate chain, leaf first
	Key      string // server private key
	ClientCA string // client CA bundle; "" disables client certificates
	// KeyPolicy is the owner and mode the key file must have, as for the
	// signing keys (keyfile.ReadSecret); nil means keyfile.DefaultPolicy.
	KeyPolicy *keyfile.Policy
}

// Material is one validated set of TLS files.
type Material struct {
	Cert      tls.Certificate
	Leaf      *x509.Certificate
	ClientCAs *x509.CertPool // nil: no client certificates requested
	CAs       []*x509.Certificate
	// CABundleSHA256 is the hex SHA-256 of the CA bundle file's bytes.
	CABundleSHA256 string
	LoadedAt       time.Time
	// Warnings are problems that do not refuse the material (a CA of the
	// bundle past its validity beside valid ones); the loader logs them.
	Warnings []string
}

// Errors that make Load refuse new material.
var (
	ErrExpired     = errors.New("mtls: certificate expired")
	ErrNotYetValid = errors.New("mtls: certificate not yet valid")
	ErrKeyMismatch = errors.New("mtls: private key does not match certificate")
	ErrNoCert      = errors.New("mtls: no certificate in file")
)

// Load reads and validates f at now: the chain parses, the key matches the
// leaf, the leaf is within its validity period, and the CA bundle (if any)
// holds at least one CA certificate valid at now.
func Load(f Files, now time.Time) (*Material, error) {
	certPEM, err := keyfile.ReadRegular(f.Cert)
	if err != nil {
		return nil, fmt.Errorf("mtls: read certificate: %w", err)
	}
	policy := keyfile.DefaultPolicy()
	if f.KeyPolicy != nil {
		policy = *f.KeyPolicy
	}
	keyPEM, err := keyfile.ReadSecret(f.Key, policy)
	if err != nil {
		return nil, fmt.Errorf("mtls: read key: %w", err)
	}
	defer clear(keyPEM)
	return Parse(certPEM, keyPEM, f, now)
}

// Parse validates PEM bytes as Load does; f names the files in errors and
// locates the CA bundle.
func Parse(certPEM, keyPEM []byte, f Files, now time.Time) (*Material, error) {
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: %s", ErrNoCert, f.Cert)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, fmt.Errorf("%w: %s and %s", ErrKeyMismatch, f.Cert, f.Key)
		}
		return nil, fmt.Errorf("mtls: %s / %s: %w", f.Cert, f.Key, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("mtls: %s: %w", f.Cert, err)
		}
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%w: %s expired %s", ErrExpired, f.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("%w: %s valid from %s", ErrNotYetValid, f.Cert, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	m := &Material{Cert: cert, Leaf: leaf, LoadedAt: now}
	if f.ClientCA != "" {
		raw, err := keyfile.ReadRegular(f.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("mtls: read client CA bundle: %w", err)
		}
		sum := sha256.Sum256(raw)
		m.CABundleSHA256 = hex.EncodeToString(sum[:])
		m.ClientCAs = x509.NewCertPool()
		for rest := raw; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("mtls: client CA bundle %s: %w", f.ClientCA, err)
			}
			if !c.IsCA {
				return nil, fmt.Errorf("mtls: client CA bundle %s: %q is not a CA certificate", f.ClientCA, c.Subject.CommonName)
			}
			m.ClientCAs.AddCert(c)
			m.CAs = append(m.CAs, c)
		}
		if len(m.CAs) == 0 {
			return nil, fmt.Errorf("mtls: client CA bundle %s: no CA certificate found", f.ClientCA)
		}
		if err := checkCAValidity(m, f.ClientCA, now); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// checkCAValidity refuses a bundle in which no CA is valid at now: every
// client handshake would fail while /health stays 200 and the load
// balancer keeps the node. Expired CAs beside valid ones are only warned
// of: the clients of the valid ones keep working.
func checkCAValidity(m *Material, path string, now time.Time) error {
	valid := 0
	var latestEnd, earliestStart time.Time
	var stale []string
	for _, c := range m.CAs {
		switch {
		case now.After(c.NotAfter):
			stale = append(stale, fmt.Sprintf("%q expired %s", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339)))
			if c.NotAfter.After(latestEnd) {
				latestEnd = c.NotAfter
			}
		case now.Before(c.NotBefore):
			stale = append(stale, fmt.Sprintf("%q valid from %s", c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339)))
			if earliestStart.IsZero() || c.NotBefore.Before(earliestStart) {
				earliestStart = c.NotBefore
			}
		default:
			valid++
		}
	}
	switch {
	case valid > 0:
		for _, s := range stale {
			m.Warnings = append(m.Warnings, fmt.Sprintf("client CA bundle %s: CA %s; clients it issued will be refused", path, s))
		}
		return nil
	case !latestEnd.IsZero():
		return fmt.Errorf("%w: client CA bundle %s: no CA is valid now; the last expired %s (%s)",
			ErrExpired, path, latestEnd.UTC().Format(time.RFC3339), strings.Join(stale, ", "))
	default:
		return fmt.Errorf("%w: client CA bundle %s: no CA is valid yet, the first from %s",
			ErrNotYetValid, path, earliestStart.UTC().Format(time.RFC3339))
	}
}
