//go:build linux

package shipped

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/netsvc/site/sitetest"
	"github.com/aunsorm/timenode/signer"
)

// operator is the site's PKI as the test plays it: the CAs an operator
// answers the node's CSRs with, and the mTLS client of the services that
// ask for time.
type operator struct {
	attest     *signer.CA
	serverCA   *sitetest.Issuer
	clientCA   *sitetest.Issuer
	client     tls.Certificate
	clientName string
	host       string // the node's address as the site reaches it, in the server certificate
}

func newOperator(t testing.TB, now time.Time, host string) *operator {
	t.Helper()
	o := &operator{serverCA: sitetest.NewIssuer(t, "boot test server CA", now),
		clientCA: sitetest.NewIssuer(t, "boot test client CA", now), clientName: "kms.boottest.example", host: host}
	var err error
	if o.attest, err = signer.NewCA("boot test attestation CA", false, now, 365*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der := o.clientCA.Leaf(t, k.Public(), o.clientName, []string{o.clientName}, x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(24*time.Hour))
	o.client = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	return o
}

// csr decodes a PEM certificate request and checks its signature.
func csr(t testing.TB, name, pemText string) *x509.CertificateRequest {
	t.Helper()
	b, _ := pem.Decode([]byte(pemText))
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("%s: no CERTIFICATE REQUEST in %q", name, pemText)
	}
	r, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// bundle answers the node's CSRs: a directory holding a provisioning
// bundle. nextCSR, when not empty, adds the certificate of the next
// signing key; attCSR, when empty, leaves the current key's certificate
// out, as a rotation bundle does. It returns the directory and the current
// attestation certificate (what clients pin), nil when left out.
func (o *operator) bundle(t testing.TB, dir string, now time.Time, tlsCSR, attCSR, nextCSR, env string) (string, []byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	req := csr(t, "node.csr", tlsCSR)
	leaf := o.serverCA.Leaf(t, req.PublicKey, "timenode boot test", []string{"localhost", o.host},
		x509.ExtKeyUsageServerAuth, now.Add(-time.Minute), now.Add(30*24*time.Hour))
	write(site.TLSCert, signer.EncodeCerts(leaf, o.serverCA.Cert.Raw))
	write(site.ServerCA, o.serverCA.PEM())
	write(site.ClientCA, o.clientCA.PEM())
	write(site.AttestationCA, signer.EncodeCerts(o.attest.Cert.Raw))
	issue := func(csrPEM string) []byte {
		der, err := o.attest.Issue(csr(t, "attestation csr", csrPEM).Raw, now.Add(-time.Hour), now.Add(30*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	var cur []byte
	if attCSR != "" { // empty: the node keeps the certificate clients pin
		cur = issue(attCSR)
		write(site.AttestationCert, signer.EncodeCerts(cur, o.attest.Cert.Raw))
	}
	if nextCSR != "" {
		write(site.NextAttestationCert, signer.EncodeCerts(issue(nextCSR), o.attest.Cert.Raw))
	}
	write(site.AllowList, []byte("# the services that may ask for signed time\n"+o.clientName+"\n"))
	write(site.Env, []byte(env))
	return dir, cur
}

// pemFile writes CA certificates to a PEM file for the command-line tools.
func pemFile(t testing.TB, path string, ders ...[]byte) string {
	t.Helper()
	if err := os.WriteFile(path, signer.EncodeCerts(ders...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientFiles writes the mTLS client's certificate and key for
// timenodectl.
func (o *operator) clientFiles(t testing.TB, dir string) (cert, key string) {
	t.Helper()
	cert, key = filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	der, err := x509.MarshalPKCS8PrivateKey(o.client.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, signer.EncodeCerts(o.client.Certificate[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}
