// Package devtls makes the development TLS material simulation mode needs:
// a throwaway CA and a server certificate for the loopback names, written
// to the state directory so that curl and timenodectl can trust the server
// with --cacert. Everything it makes says DEVELOPMENT in its subject.
package devtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/aunsorm/timenode/signer/keyfile"
)

// File names written by Generate in the state directory.
const (
	CAFile         = "dev-ca.pem"
	CertFile       = "dev-server.crt"
	KeyFile        = "dev-server.key"
	ClientCertFile = "dev-client.crt"
	ClientKeyFile  = "dev-client.key"
)

// ClientName is the DNS SAN of the development client certificate, the
// identity simulation mode puts on its mTLS allow-list.
const ClientName = "dev-client.timenode"

// Material is the generated CA and server certificate.
type Material struct {
	Server tls.Certificate
	Client tls.Certificate // a client certificate for ClientName
	CA     *x509.Certificate
	CAPath string // where the CA certificate was written (also the client CA bundle)
	// Paths of the written server and client certificates and keys.
	CertPath, KeyPath, ClientCertPath, ClientKeyPath string
}

// Generate creates a CA and a server certificate for hosts (names and IP
// addresses), valid from now for lifetime, and writes them to dir: the CA
// and certificate world-readable, the key 0600.
func Generate(dir string, hosts []string, now time.Time, lifetime time.Duration) (*Material, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devtls: ca key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "timenode DEVELOPMENT CA", Organization: []string{"timenode development"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("devtls: ca certificate: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)

	server, err := issue(ca, caKey, "timenode DEVELOPMENT server", hosts, x509.ExtKeyUsageServerAuth, now, lifetime)
	if err != nil {
		return nil, err
	}
	client, err := issue(ca, caKey, "timenode DEVELOPMENT client", []string{ClientName}, x509.ExtKeyUsageClientAuth, now, lifetime)
	if err != nil {
		return nil, err
	}
	m := &Material{CA: ca, CAPath: filepath.Join(dir, CAFile),
		CertPath: filepath.Join(dir, CertFile), KeyPath: filepath.Join(dir, KeyFile),
		ClientCertPath: filepath.Join(dir, ClientCertFile), ClientKeyPath: filepath.Join(dir, ClientKeyFile)}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{m.CAPath, caPEM, 0o644}, {m.CertPath, server.certPEM, 0o644}, {m.KeyPath, server.keyPEM, 0o600},
		{m.ClientCertPath, client.certPEM, 0o644}, {m.ClientKeyPath, client.keyPEM, 0o600}} {
		if err := writeFile(f.path, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	if m.Server, err = tls.X509KeyPair(server.certPEM, server.keyPEM); err != nil {
		return nil, fmt.Errorf("devtls: key pair: %w", err)
	}
	if m.Client, err = tls.X509KeyPair(client.certPEM, client.keyPEM); err != nil {
		return nil, fmt.Errorf("devtls: client key pair: %w", err)
	}
	return m, nil
}

type leaf struct{ certPEM, keyPEM []byte }

// issue makes a leaf certificate for names signed by the CA.
func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, names []string, usage x509.ExtKeyUsage, now time.Time, lifetime time.Duration) (*leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devtls: %s key: %w", cn, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"timenode development"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range names {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("devtls: %s certificate: %w", cn, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("devtls: marshal %s key: %w", cn, err)
	}
	return &leaf{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("devtls: crypto/rand failed: " + err.Error())
	}
	return n
}

// writeFile writes atomically (see keyfile.WriteAtomic): a reader sees
// the old file or the new one, and a full disk is an error, never an
// empty certificate in place of a good one.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := keyfile.WriteAtomic(path, data, mode); err != nil {
		return fmt.Errorf("devtls: %w", err)
	}
	return nil
}
