package keyfile

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Alg is a signature algorithm whose private key a file holds.
type Alg int

// The two algorithms of a hybrid key.
const (
	Ed25519 Alg = iota + 1
	MLDSA65
)

// SeedSize is the size of both algorithms' private seeds.
const SeedSize = 32

// Object identifiers: id-Ed25519 (RFC 8410) and id-ml-dsa-65 (FIPS 204,
// NIST CSOR; RFC 9881).
var (
	OIDEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
	OIDMLDSA65 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}
)

// expandedSize is the FIPS 204 encoding of an ML-DSA-65 private key.
const expandedSize = mldsa65.PrivateKeySize

func (a Alg) String() string {
	switch a {
	case Ed25519:
		return "Ed25519"
	case MLDSA65:
		return "ML-DSA-65"
	}
	return fmt.Sprintf("Alg(%d)", int(a))
}

func (a Alg) oid() asn1.ObjectIdentifier {
	if a == Ed25519 {
		return OIDEd25519
	}
	return OIDMLDSA65
}

func algName(oid asn1.ObjectIdentifier) string {
	switch {
	case oid.Equal(OIDEd25519):
		return "Ed25519"
	case oid.Equal(OIDMLDSA65):
		return "ML-DSA-65"
	case oid.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}):
		return "RSA"
	case oid.Equal(asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}):
		return "ECDSA"
	}
	return "OID " + oid.String()
}

// oneAsymmetricKey is PKCS#8 / RFC 5958 OneAsymmetricKey.
type oneAsymmetricKey struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
	Attributes asn1.RawValue  `asn1:"optional,tag:0"`
	PublicKey  asn1.BitString `asn1:"optional,tag:1"`
}

// mldsaBoth is the "both" choice of ML-DSA-65-PrivateKey.
type mldsaBoth struct {
	Seed        []byte
	ExpandedKey []byte
}

// ParsePEM extracts the 32-byte seed of an alg private key from a PKCS#8
// PEM file's contents. name (the file) prefixes every error. The caller
// wipes both data and the returned seed.
func ParsePEM(name string, data []byte, alg Alg) ([]byte, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("keyfile: %s: no complete PEM block (empty or truncated file)", name)
	}
	defer clear(block.Bytes)
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("keyfile: %s: PEM type %q, want \"PRIVATE KEY\" (PKCS#8 %s)", name, block.Type, alg)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("keyfile: %s: data after the PEM block", name)
	}
	var k oneAsymmetricKey
	tail, err := asn1.Unmarshal(block.Bytes, &k)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %s: PKCS#8 DER truncated or malformed: %v", name, err)
	}
	defer clear(k.PrivateKey)
	if len(tail) != 0 {
		return nil, fmt.Errorf("keyfile: %s: %d bytes after the PKCS#8 structure", name, len(tail))
	}
	if k.Version != 0 && k.Version != 1 {
		return nil, fmt.Errorf("keyfile: %s: PKCS#8 version %d", name, k.Version)
	}
	if !k.Algorithm.Algorithm.Equal(alg.oid()) {
		return nil, fmt.Errorf("keyfile: %s: wrong key type: %s, want %s", name, algName(k.Algorithm.Algorithm), alg)
	}
	if len(k.Algorithm.Parameters.FullBytes) != 0 {
		return nil, fmt.Errorf("keyfile: %s: %s algorithm parameters must be absent", name, alg)
	}
	var seed []byte
	switch alg {
	case Ed25519:
		seed, err = ed25519Seed(k.PrivateKey)
	case MLDSA65:
		seed, err = mldsaSeed(k.PrivateKey)
	}
	if err != nil {
		return nil, fmt.Errorf("keyfile: %s: %w", name, err)
	}
	if len(k.PublicKey.Bytes) != 0 {
		if pub := publicFromSeed(alg, seed); !bytes.Equal(pub, k.PublicKey.Bytes) {
			clear(seed)
			return nil, fmt.Errorf("keyfile: %s: embedded public key does not match the private key", name)
		}
	}
	return seed, nil
}

func ed25519Seed(inner []byte) ([]byte, error) {
	var seed []byte
	tail, err := asn1.Unmarshal(inner, &seed)
	if err != nil || len(tail) != 0 {
		return nil, fmt.Errorf("Ed25519 CurvePrivateKey malformed or truncated")
	}
	if len(seed) != SeedSize {
		clear(seed)
		return nil, fmt.Errorf("Ed25519 private key is %d bytes, want %d", len(seed), SeedSize)
	}
	return append([]byte(nil), seed...), nil
}

func mldsaSeed(inner []byte) ([]byte, error) {
	var rv asn1.RawValue
	tail, err := asn1.Unmarshal(inner, &rv)
	if err != nil || len(tail) != 0 {
		return nil, fmt.Errorf("ML-DSA-65 private key malformed or truncated")
	}
	switch {
	case rv.Class == asn1.ClassContextSpecific && rv.Tag == 0 && !rv.IsCompound:
		if len(rv.Bytes) != SeedSize {
			return nil, fmt.Errorf("ML-DSA-65 seed is %d bytes, want %d", len(rv.Bytes), SeedSize)
		}
		return append([]byte(nil), rv.Bytes...), nil
	case rv.Class == asn1.ClassUniversal && rv.Tag == asn1.TagSequence:
		var both mldsaBoth
		if rest, err := asn1.Unmarshal(inner, &both); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("ML-DSA-65 seed-and-expanded key malformed")
		}
		defer clear(both.ExpandedKey)
		if len(both.Seed) != SeedSize || len(both.ExpandedKey) != expandedSize {
			return nil, fmt.Errorf("ML-DSA-65 seed-and-expanded key has sizes %d and %d, want %d and %d", len(both.Seed), len(both.ExpandedKey), SeedSize, expandedSize)
		}
		var s [SeedSize]byte
		copy(s[:], both.Seed)
		_, sk := mldsa65.NewKeyFromSeed(&s)
		exp := sk.Bytes()
		match := bytes.Equal(exp, both.ExpandedKey)
		clear(exp)
		*sk = mldsa65.PrivateKey{}
		if !match {
			clear(s[:])
			return nil, fmt.Errorf("ML-DSA-65 expanded key does not match its seed")
		}
		out := append([]byte(nil), s[:]...)
		clear(s[:])
		return out, nil
	case rv.Class == asn1.ClassUniversal && rv.Tag == asn1.TagOctetString:
		clear(rv.Bytes)
		return nil, fmt.Errorf("ML-DSA-65 key in expanded-only form: export it with its seed (RFC 9881 seed or both form)")
	}
	return nil, fmt.Errorf("ML-DSA-65 private key: unexpected ASN.1 class %d tag %d", rv.Class, rv.Tag)
}

// publicFromSeed returns the public key bytes a seed makes.
func publicFromSeed(alg Alg, seed []byte) []byte {
	if alg == Ed25519 {
		priv := ed25519.NewKeyFromSeed(seed)
		defer clear(priv)
		return append([]byte(nil), priv[32:]...)
	}
	var s [SeedSize]byte
	copy(s[:], seed)
	pk, sk := mldsa65.NewKeyFromSeed(&s)
	clear(s[:])
	*sk = mldsa65.PrivateKey{}
	return pk.Bytes()
}

// MarshalPEM encodes a seed as a PKCS#8 PEM private key: for Ed25519 the
// RFC 8410 CurvePrivateKey, for ML-DSA-65 the RFC 9881 seed form
// ([0] IMPLICIT OCTET STRING of 32 bytes). The caller wipes the result.
func MarshalPEM(alg Alg, seed []byte) ([]byte, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("keyfile: marshal %s: seed is %d bytes, want %d", alg, len(seed), SeedSize)
	}
	var inner []byte
	var err error
	switch alg {
	case Ed25519:
		inner, err = asn1.Marshal(seed)
	case MLDSA65:
		inner, err = asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: seed})
	default:
		return nil, fmt.Errorf("keyfile: marshal: unknown algorithm %v", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keyfile: marshal %s: %w", alg, err)
	}
	defer clear(inner)
	der, err := asn1.Marshal(struct {
		Version    int
		Algorithm  pkix.AlgorithmIdentifier
		PrivateKey []byte
	}{0, pkix.AlgorithmIdentifier{Algorithm: alg.oid()}, inner})
	if err != nil {
		return nil, fmt.Errorf("keyfile: marshal %s: %w", alg, err)
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
