package signer

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// EndorsementDomain prefixes the bytes of a key endorsement.
const EndorsementDomain = "TIMENODE-KEY-ENDORSEMENT-V1\x00"

// Endorsement is a statement by one key (the endorser, normally the key
// being rotated out) that another key may be trusted for its window. Both
// signatures of the endorser cover EndorsementBytes.
type Endorsement struct {
	EndorserID string
	Ed25519    []byte
	MLDSA65    []byte
}

// EndorsementBytes returns the bytes an endorser signs for k:
//
//	EndorsementDomain
//	str endorser key id   (u16 big-endian length, then bytes)
//	str key id
//	u8  development       (0 or 1)
//	32  Ed25519 public key
//	1952 ML-DSA-65 public key (FIPS 204 encoding)
//	i64 not_before        (Unix ns, big-endian)
//	i64 not_after         (Unix ns; 0 = no end)
func EndorsementBytes(endorserID string, k PublicKey) ([]byte, error) {
	if len(k.Ed25519) != ed25519.PublicKeySize || k.MLDSA65 == nil {
		return nil, fmt.Errorf("%w: endorsement of incomplete key %s", ErrEncoding, k.ID)
	}
	b := make([]byte, 0, 64+len(endorserID)+len(k.ID)+32+mldsa65.PublicKeySize+16)
	b = append(b, EndorsementDomain...)
	var err error
	if b, err = appendString(b, endorserID); err != nil {
		return nil, err
	}
	if b, err = appendString(b, k.ID); err != nil {
		return nil, err
	}
	dev := byte(0)
	if k.Development {
		dev = 1
	}
	b = append(b, dev)
	b = append(b, k.Ed25519...)
	b = append(b, k.MLDSA65.Bytes()...)
	b = binary.BigEndian.AppendUint64(b, uint64(k.NotBefore.UnixNano()))
	var na int64
	if !k.NotAfter.IsZero() {
		na = k.NotAfter.UnixNano()
	}
	return binary.BigEndian.AppendUint64(b, uint64(na)), nil
}

// Endorse signs k with by's two keys.
func Endorse(by *KeyPair, k PublicKey) (*Endorsement, error) {
	msg, err := EndorsementBytes(by.ID(), k)
	if err != nil {
		return nil, err
	}
	ed, ml, err := by.sign(msg)
	if err != nil {
		return nil, fmt.Errorf("signer: endorse %s by %s: %w", k.ID, by.ID(), err)
	}
	return &Endorsement{EndorserID: by.ID(), Ed25519: ed, MLDSA65: ml}, nil
}

// VerifyEndorsement checks that k carries an endorsement by `by` whose
// signatures both verify. A development key never endorses a production
// key.
func VerifyEndorsement(by, k PublicKey) error {
	e := k.Endorsement
	if e == nil {
		return fmt.Errorf("%w: key %s carries no endorsement", ErrSignature, k.ID)
	}
	if e.EndorserID != by.ID {
		return fmt.Errorf("%w: key %s is endorsed by %s, not %s", ErrUnknownKey, k.ID, e.EndorserID, by.ID)
	}
	if by.Development && !k.Development {
		return fmt.Errorf("%w: development key %s cannot endorse production key %s", ErrDevelopmentKey, by.ID, k.ID)
	}
	msg, err := EndorsementBytes(by.ID, k)
	if err != nil {
		return err
	}
	if !ed25519.Verify(by.Ed25519, msg, e.Ed25519) {
		return fmt.Errorf("%w: ed25519 endorsement of %s by %s", ErrSignature, k.ID, by.ID)
	}
	if by.MLDSA65 == nil || !mldsa65.Verify(by.MLDSA65, msg, nil, e.MLDSA65) {
		return fmt.Errorf("%w: ml-dsa-65 endorsement of %s by %s", ErrSignature, k.ID, by.ID)
	}
	return nil
}
