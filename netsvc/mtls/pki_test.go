package mtls

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
	"testing"
	"time"
)

// pki is a throwaway PKI for tests: CAs, a server certificate, clients.
type pki struct {
	t   *testing.T
	dir string
}

type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

var serialN int64 = 100

func (p *pki) issue(cn string, dns []string, parent *issued, isCA bool, notBefore, notAfter time.Time, usage x509.ExtKeyUsage) *issued {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	serialN++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serialN), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter, DNSNames: dns,
		BasicConstraintsValid: true, IsCA: isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		for _, n := range dns {
			if ip := net.ParseIP(n); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		}
	}
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		p.t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &issued{cert: c, key: key, der: der}
}

func (p *pki) write(name string, it *issued) (certPath, keyPath string) {
	p.t.Helper()
	certPath, keyPath = filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	kd, _ := x509.MarshalPKCS8PrivateKey(it.key)
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: it.der}), 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return certPath, keyPath
}

func (it *issued) tlsCert() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{it.der}, PrivateKey: it.key, Leaf: it.cert}
}

// world is the usual setup: service CA, another CA, a server certificate.
type world struct {
	p                  *pki
	now                time.Time
	ca, otherCA        *issued
	server             *issued
	files              Files
	caPath, otherCAPth string
}

func newWorld(t *testing.T) *world {
	w := &world{p: &pki{t: t, dir: t.TempDir()}, now: time.Now()}
	year := w.now.Add(365 * 24 * time.Hour)
	w.ca = w.p.issue("service CA", nil, nil, true, w.now.Add(-time.Hour), year, 0)
	w.otherCA = w.p.issue("other CA", nil, nil, true, w.now.Add(-time.Hour), year, 0)
	w.server = w.p.issue("timenode", []string{"localhost", "127.0.0.1"}, w.ca, false, w.now.Add(-time.Hour), w.now.Add(60*24*time.Hour), x509.ExtKeyUsageServerAuth)
	w.caPath, _ = w.p.write("ca", w.ca)
	w.otherCAPth, _ = w.p.write("other-ca", w.otherCA)
	cert, key := w.p.write("server", w.server)
	w.files = Files{Cert: cert, Key: key, ClientCA: w.caPath}
	return w
}

func (w *world) client(cn string, dns []string, ca *issued, notBefore, notAfter time.Time) *issued {
	return w.p.issue(cn, dns, ca, false, notBefore, notAfter, x509.ExtKeyUsageClientAuth)
}
