// Package sitetest builds provisioned appliance state for tests: a state
// directory with the node's own keys, as timenode-firstboot makes them, and
// site bundles issued by test CAs as an operator's PKI would, all relative
// to an injected time.
package sitetest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
)

// Node is a node's state directory and the CAs of its site.
type Node struct {
	State    string     // the state directory (S)
	Attest   *signer.CA // production attestation CA
	ServerCA *Issuer    // issues the node's TLS server certificate
	ClientCA *Issuer    // issues the mTLS clients' certificates
}

// Issuer is a minimal X.509 CA for TLS certificates.
type Issuer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewNode makes a state directory with fresh signing keys and a TLS key
// (0600, in S/keys) and the site's CAs, valid from now for a year.
func NewNode(t testing.TB, now time.Time) *Node {
	t.Helper()
	n := &Node{State: t.TempDir()}
	keys := filepath.Join(n.State, site.KeysDir)
	if err := keyfile.Generate(keys, rand.Reader, nil, false); err != nil {
		t.Fatal(err)
	}
	writeKey(t, filepath.Join(keys, site.TLSKey))
	var err error
	if n.Attest, err = signer.NewCA("test attestation CA", false, now, 365*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	n.ServerCA = NewIssuer(t, "test server CA", now)
	n.ClientCA = NewIssuer(t, "test client CA", now)
	return n
}

// NewIssuer makes a self-signed ECDSA CA valid from an hour before now for
// a year.
func NewIssuer(t testing.TB, name string, now time.Time) *Issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{Cert: cert, Key: key}
}

// PEM returns the CA certificate in PEM.
func (is *Issuer) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.Cert.Raw})
}

// Leaf issues a certificate for pub valid over [notBefore, notAfter] with
// the given extended key usage; names become DNS or IP SANs.
func (is *Issuer) Leaf(t testing.TB, pub crypto.PublicKey, cn string, names []string, usage x509.ExtKeyUsage, notBefore, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, is.Cert, pub, is.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// Bundle writes a complete, valid provisioning bundle for the node into a
// new directory and returns it: server certificate for localhost and
// 127.0.0.1 valid for 90 days (the certificate policy's longest), the CAs, the attestation
// certificate of the current signing key (and of the next key when its
// files exist), an allow-list naming allowed, and site.env.
func (n *Node) Bundle(t testing.TB, now time.Time, allowed ...string) string {
	t.Helper()
	dir := t.TempDir()
	tlsKey := n.TLSKey(t)
	leaf := n.ServerCA.Leaf(t, tlsKey.Public(), "timenode test node", []string{"localhost", "127.0.0.1"},
		x509.ExtKeyUsageServerAuth, now.Add(-time.Minute), now.Add(-time.Minute+90*24*time.Hour))
	write(t, dir, site.TLSCert, signer.EncodeCerts(leaf, n.ServerCA.Cert.Raw))
	write(t, dir, site.ServerCA, n.ServerCA.PEM())
	write(t, dir, site.ClientCA, n.ClientCA.PEM())
	write(t, dir, site.AttestationCA, signer.EncodeCerts(n.Attest.Cert.Raw))
	write(t, dir, site.AttestationCert, n.AttestationCert(t, "", now))
	if _, err := os.Stat(filepath.Join(n.State, site.KeysDir, signer.NextPrefix+signer.Ed25519KeyFile)); err == nil {
		write(t, dir, site.NextAttestationCert, n.AttestationCert(t, signer.NextPrefix, now))
	}
	allow := ""
	for _, a := range allowed {
		allow += a + "\n"
	}
	write(t, dir, site.AllowList, []byte(allow))
	write(t, dir, site.Env, []byte("NTP_AUTHORITY_ID=time.test.example\n"))
	return dir
}

// AttestationCert issues the chain certifying the node's signing key with
// the given file prefix ("" or signer.NextPrefix), valid from an hour
// before now for 30 days.
func (n *Node) AttestationCert(t testing.TB, prefix string, now time.Time) []byte {
	t.Helper()
	dir := filepath.Join(n.State, site.KeysDir)
	if prefix != "" {
		// LoadKeySet reads the current key from the plain names: stage the
		// next key under them in a scratch directory.
		tmp := t.TempDir()
		for _, f := range []string{signer.Ed25519KeyFile, signer.MLDSA65KeyFile} {
			b, err := os.ReadFile(filepath.Join(dir, prefix+f))
			if err != nil {
				t.Fatal(err)
			}
			write(t, tmp, f, b)
		}
		dir = tmp
	}
	ks, err := signer.LoadKeySet(signer.LoadConfig{Dir: dir, CertDir: t.TempDir(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	csr, err := signer.CreateCSR(ks.Active(now), "time.test.example")
	if err != nil {
		t.Fatal(err)
	}
	der, err := n.Attest.Issue(csr, now.Add(-time.Hour), now.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return signer.EncodeCerts(der, n.Attest.Cert.Raw)
}

// TLSKey reads the node's TLS private key.
func (n *Node) TLSKey(t testing.TB) crypto.Signer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.State, site.KeysDir, site.TLSKey))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("tls.key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

// Activate copies bundle into a new generation named gen under S/.site
// and points S/site at it, replacing the link atomically (what
// `timenodectl provision install` does after validating).
func (n *Node) Activate(t testing.TB, bundle, gen string) {
	t.Helper()
	dst := filepath.Join(n.State, site.GensDir, gen)
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(bundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(bundle, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		write(t, dst, e.Name(), b)
	}
	tmp := filepath.Join(n.State, ".site-link-tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join(site.GensDir, gen), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(n.State, site.Link)); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t testing.TB, path string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
