package signer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Certificate extensions under a PROVISIONAL private arc,
// 1.3.6.1.4.1.32473.7340 (32473 is the IANA "example" enterprise number,
// RFC 5612). A UUID arc (2.25.N) would need no registration, but Go's
// encoding/asn1 rejects OID components over 31 bits. Replace oidArc with
// Aunsorm's own enterprise number before the first production CA is made.
// All extensions are non-critical, so generic X.509 code still builds and
// verifies the chain.
var (
	oidArc = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 7340}
	// OIDExtMLDSA65Key carries the node's ML-DSA-65 public key as a DER
	// SubjectPublicKeyInfo (RFC 9881) in the certificate of its Ed25519 key.
	OIDExtMLDSA65Key = append(append(asn1.ObjectIdentifier(nil), oidArc...), 1)
	// OIDExtDevelopment marks development CAs and certificates (value NULL).
	OIDExtDevelopment = append(append(asn1.ObjectIdentifier(nil), oidArc...), 2)
	// OIDExtMLDSA65PoP is, in a CSR only, an ML-DSA-65 signature by the
	// requested key over PoPDomain || Ed25519 key || ML-DSA-65 key.
	OIDExtMLDSA65PoP = append(append(asn1.ObjectIdentifier(nil), oidArc...), 3)
)

// PoPDomain prefixes the ML-DSA-65 proof of possession in a CSR.
const PoPDomain = "TIMENODE-CSR-MLDSA65-POP-V1\x00"

// ErrCertificate is wrapped by every rejected attestation certificate.
var ErrCertificate = errors.New("signer: attestation certificate rejected")

type spki struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

func mldsaKeyExt(pk *mldsa65.PublicKey) (pkix.Extension, error) {
	der, err := asn1.Marshal(spki{Algorithm: pkix.AlgorithmIdentifier{Algorithm: keyfile.OIDMLDSA65},
		PublicKey: asn1.BitString{Bytes: pk.Bytes(), BitLength: 8 * mldsa65.PublicKeySize}})
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: OIDExtMLDSA65Key, Value: der}, nil
}

func devExt() pkix.Extension {
	return pkix.Extension{Id: OIDExtDevelopment, Value: []byte{0x05, 0x00}}
}

func findExt(exts []pkix.Extension, id asn1.ObjectIdentifier) (pkix.Extension, bool) {
	for _, e := range exts {
		if e.Id.Equal(id) {
			return e, true
		}
	}
	return pkix.Extension{}, false
}

func parseMLDSAExt(exts []pkix.Extension) (*mldsa65.PublicKey, error) {
	e, ok := findExt(exts, OIDExtMLDSA65Key)
	if !ok {
		return nil, errors.New("no ML-DSA-65 key extension")
	}
	var s spki
	if rest, err := asn1.Unmarshal(e.Value, &s); err != nil || len(rest) != 0 {
		return nil, errors.New("ML-DSA-65 key extension malformed")
	}
	if !s.Algorithm.Algorithm.Equal(keyfile.OIDMLDSA65) {
		return nil, fmt.Errorf("ML-DSA-65 key extension holds algorithm %v", s.Algorithm.Algorithm)
	}
	pk := new(mldsa65.PublicKey)
	if err := pk.UnmarshalBinary(s.PublicKey.Bytes); err != nil {
		return nil, fmt.Errorf("ML-DSA-65 key extension: %w", err)
	}
	return pk, nil
}

// IsDevelopmentCert reports whether c is marked as development material
// (the extension, or DEVELOPMENT in its subject).
func IsDevelopmentCert(c *x509.Certificate) bool {
	_, ext := findExt(c.Extensions, OIDExtDevelopment)
	return ext || strings.Contains(strings.ToUpper(c.Subject.String()), "DEVELOPMENT")
}

// Fingerprint is the calibration fingerprint of a certificate: the
// lower-case hex SHA-256 of its DER encoding.
func Fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// NormalizeFingerprint accepts hex with optional colons or spaces and any
// case, as printed by openssl or sha256sum, and returns lower-case hex.
func NormalizeFingerprint(s string) (string, error) {
	s = strings.ToLower(strings.NewReplacer(":", "", " ", "", "sha256=", "", "sha256:", "").Replace(strings.TrimSpace(s)))
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("signer: fingerprint %q: want 64 hex digits (SHA-256)", s)
	}
	return s, nil
}

// NodeCert is a parsed attestation certificate: the X.509 certificate of
// the node's Ed25519 key, with the ML-DSA-65 key bound in an extension.
type NodeCert struct {
	Cert        *x509.Certificate
	Chain       [][]byte // DER, node certificate first
	Ed25519     ed25519.PublicKey
	MLDSA65     *mldsa65.PublicKey
	Development bool
}

// ParseNodeChain parses a chain (DER, node certificate first) and checks
// that the node certificate holds an Ed25519 key and the ML-DSA-65
// extension. It does not verify signatures: see NodeCert.VerifyChain.
func ParseNodeChain(chain [][]byte) (*NodeCert, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: empty chain", ErrCertificate)
	}
	c, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertificate, err)
	}
	ed, ok := c.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: %q certifies a %T, want an Ed25519 key", ErrCertificate, c.Subject.CommonName, c.PublicKey)
	}
	ml, err := parseMLDSAExt(c.Extensions)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrCertificate, c.Subject.CommonName, err)
	}
	n := &NodeCert{Cert: c, Chain: chain, Ed25519: ed, MLDSA65: ml, Development: IsDevelopmentCert(c)}
	for _, der := range chain[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: chain: %v", ErrCertificate, err)
		}
		n.Development = n.Development || IsDevelopmentCert(ic)
	}
	return n, nil
}

// VerifyChain verifies the node certificate up to one of roots at time
// now. In production any development marking anywhere in the chain, the
// root included, is an error.
func (n *NodeCert) VerifyChain(roots *x509.CertPool, now time.Time, production bool) error {
	inter := x509.NewCertPool()
	for _, der := range n.Chain[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	chains, err := n.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrCertificate, n.Cert.Subject.CommonName, err)
	}
	if production {
		for _, c := range chains[0] {
			if IsDevelopmentCert(c) {
				return fmt.Errorf("%w: %q is development material (production mode)", ErrDevelopmentKey, c.Subject.CommonName)
			}
		}
	}
	return nil
}

// CA is a certificate authority that issues attestation certificates.
type CA struct {
	Cert *x509.Certificate
	Key  ed25519.PrivateKey
}

// LogValue redacts the CA key: only the certificate's subject is logged.
func (ca *CA) LogValue() slog.Value { return slog.StringValue("CA " + ca.Cert.Subject.CommonName) }

// NewCA makes a self-signed Ed25519 CA. A development CA says DEVELOPMENT
// in its subject and carries the development extension.
func NewCA(name string, dev bool, now time.Time, lifetime time.Duration) (*CA, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signer: ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(), Subject: pkix.Name{CommonName: name, Organization: []string{"timenode"}},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: 1,
	}
	if dev {
		if !strings.Contains(strings.ToUpper(name), "DEVELOPMENT") {
			tmpl.Subject.CommonName = name + " DEVELOPMENT"
		}
		tmpl.ExtraExtensions = []pkix.Extension{devExt()}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("signer: ca certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: priv}, nil
}

func serialNumber() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func popMessage(ed ed25519.PublicKey, ml *mldsa65.PublicKey) []byte {
	return append(append([]byte(PoPDomain), ed...), ml.Bytes()...)
}

// CreateCSR makes a certificate request for kp: signed by its Ed25519
// key, carrying its ML-DSA-65 key in the extension and an ML-DSA-65 proof
// of possession.
func CreateCSR(kp *KeyPair, commonName string) ([]byte, error) {
	ext, err := mldsaKeyExt(kp.pub.MLDSA65)
	if err != nil {
		return nil, err
	}
	var pop []byte
	err = kp.withKeys(func(_ *edKey, ml *mldsa65.PrivateKey) error {
		pop = make([]byte, mldsa65.SignatureSize)
		return mldsa65.SignTo(ml, popMessage(kp.pub.Ed25519, kp.pub.MLDSA65), nil, false, pop)
	})
	if err != nil {
		return nil, err
	}
	popExt := pkix.Extension{Id: OIDExtMLDSA65PoP, Value: pop}
	var der []byte
	// edKey is the crypto.Signer: crypto/ed25519 never sees the seed.
	err = kp.withKeys(func(ed *edKey, _ *mldsa65.PrivateKey) error {
		var err error
		der, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject:         pkix.Name{CommonName: commonName, Organization: []string{"timenode"}},
			ExtraExtensions: []pkix.Extension{ext, popExt},
		}, ed)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("signer: csr: %w", err)
	}
	return der, nil
}

// Issue checks a CSR (its Ed25519 signature and the ML-DSA-65 proof of
// possession) and certifies it for [notBefore, notAfter]. A development
// CA issues development certificates only.
func (ca *CA) Issue(csrDER []byte, notBefore, notAfter time.Time) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("signer: issue: csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("signer: issue: csr signature: %w", err)
	}
	ed, ok := csr.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("signer: issue: csr key is %T, want Ed25519", csr.PublicKey)
	}
	ml, err := parseMLDSAExt(csr.Extensions)
	if err != nil {
		return nil, fmt.Errorf("signer: issue: %v", err)
	}
	pop, ok := findExt(csr.Extensions, OIDExtMLDSA65PoP)
	if !ok || !mldsa65.Verify(ml, popMessage(ed, ml), nil, pop.Value) {
		return nil, errors.New("signer: issue: csr lacks a valid ML-DSA-65 proof of possession")
	}
	ext, _ := findExt(csr.Extensions, OIDExtMLDSA65Key)
	dev := IsDevelopmentCert(ca.Cert)
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(), Subject: csr.Subject,
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{ext},
	}
	if dev {
		if !strings.Contains(strings.ToUpper(tmpl.Subject.CommonName), "DEVELOPMENT") {
			tmpl.Subject.CommonName += " DEVELOPMENT"
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, devExt())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, ed, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signer: issue: %w", err)
	}
	return der, nil
}

// EncodeCerts renders DER certificates as concatenated PEM.
func EncodeCerts(ders ...[]byte) []byte {
	var b bytes.Buffer
	for _, d := range ders {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: d})
	}
	return b.Bytes()
}

// DecodeCerts parses every CERTIFICATE block of a PEM file; name prefixes
// errors.
func DecodeCerts(name string, data []byte) ([][]byte, error) {
	var out [][]byte
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("signer: %s: PEM block %q, want CERTIFICATE", name, blk.Type)
		}
		out = append(out, blk.Bytes)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("signer: %s: no PEM certificate", name)
	}
	return out, nil
}
