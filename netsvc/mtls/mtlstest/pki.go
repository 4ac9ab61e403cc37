// Package mtlstest builds throwaway PKIs for tests: CAs, server and client
// certificates with chosen names and validity, written as PEM files.
package mtlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// PKI issues certificates and writes them under Dir.
type PKI struct {
	Dir string
	t   testing.TB
}

// New returns a PKI writing into a fresh temporary directory.
func New(t testing.TB) *PKI { return &PKI{Dir: t.TempDir(), t: t} }

// Issued is a certificate and its key.
type Issued struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	DER  []byte
}

var serial atomic.Int64

// CA makes a self-signed CA certificate.
func (p *PKI) CA(cn string, notBefore, notAfter time.Time) *Issued {
	return p.issue(cn, nil, nil, true, notBefore, notAfter, 0)
}

// Leaf makes an end-entity certificate for names (DNS names or IP
// addresses) signed by parent, for the given extended key usage.
func (p *PKI) Leaf(cn string, names []string, parent *Issued, usage x509.ExtKeyUsage, notBefore, notAfter time.Time) *Issued {
	return p.issue(cn, names, parent, false, notBefore, notAfter, usage)
}

func (p *PKI) issue(cn string, names []string, parent *Issued, isCA bool, notBefore, notAfter time.Time, usage x509.ExtKeyUsage) *Issued {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1000 + serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		BasicConstraintsValid: true, IsCA: isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		for _, n := range names {
			if ip := net.ParseIP(n); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, n)
			}
		}
	}
	signKey, signCert := key, tmpl
	if parent != nil {
		signKey, signCert = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signCert, &key.PublicKey, signKey)
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	return &Issued{Cert: c, Key: key, DER: der}
}

// Write stores it as name.crt and name.key (0600) and returns the paths.
func (p *PKI) Write(name string, it *Issued) (certPath, keyPath string) {
	p.t.Helper()
	certPath, keyPath = filepath.Join(p.Dir, name+".crt"), filepath.Join(p.Dir, name+".key")
	kd, err := x509.MarshalPKCS8PrivateKey(it.Key)
	if err != nil {
		p.t.Fatal(err)
	}
	writeAtomic(p.t, certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: it.DER}), 0o644)
	writeAtomic(p.t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	return certPath, keyPath
}

// writeAtomic replaces path in one rename, as an operator's deployment
// tool would, so a reader never sees half a file.
func writeAtomic(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TLS returns it as a tls.Certificate.
func (it *Issued) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{it.DER}, PrivateKey: it.Key, Leaf: it.Cert}
}

// Pool returns a pool holding the given CA certificates.
func Pool(cas ...*Issued) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cas {
		p.AddCert(c.Cert)
	}
	return p
}
