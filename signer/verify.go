package signer

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Verification errors. Use errors.Is; StaleAttestation is a type.
var (
	ErrMalformed      = errors.New("signer: malformed attestation")
	ErrUnknownKey     = errors.New("signer: unknown key id")
	ErrSignature      = errors.New("signer: signature invalid")
	ErrDevelopmentKey = errors.New("signer: signed by a development key (rejected in production mode)")
	ErrKeyWindow      = errors.New("signer: attestation outside the key's validity window")
	ErrNonce          = errors.New("signer: nonce does not match the request")
	ErrFuture         = errors.New("signer: attestation timestamp is in the future")
	ErrNoKey          = errors.New("signer: no signing key loaded")
)

// StaleAttestation is returned when an attestation is older than allowed.
type StaleAttestation struct {
	Age, MaxAge time.Duration
}

func (e *StaleAttestation) Error() string {
	return fmt.Sprintf("signer: stale attestation: age %v exceeds max age %v", e.Age.Round(time.Millisecond), e.MaxAge)
}

// Verifier checks attestations against a set of trusted public keys.
type Verifier struct {
	// Keys maps key id to key.
	Keys map[string]PublicKey
	// Production rejects attestations signed by development keys.
	Production bool
	// Ed25519Only accepts attestations whose Ed25519 signature verifies
	// without checking ML-DSA-65, for clients that cannot yet. There is no
	// setting that accepts neither.
	Ed25519Only bool
	// MaxAge is the oldest attestation accepted (30 s if zero).
	MaxAge time.Duration
	// RequireTrusted refuses, with ErrIntegrityNotTrusted, an attestation
	// that is valid but whose signed integrity state is not "trusted":
	// suspect, untrusted, or none (a node without integrity checks, or a
	// document older than format version 3). Off, a suspect node's
	// attestation is accepted: its bound already carries the widening.
	RequireTrusted bool
}

// NewVerifier trusts the given keys.
func NewVerifier(keys []PublicKey) *Verifier {
	v := &Verifier{Keys: make(map[string]PublicKey, len(keys))}
	for _, k := range keys {
		v.Keys[k.ID] = k
	}
	return v
}

// Verify checks a's signatures, key, age at now and, when wantNonce is not
// nil, that a answers that nonce. It returns the first failed check.
func (v *Verifier) Verify(a *Attestation, now time.Time, wantNonce []byte) error {
	c, err := a.claims()
	if err != nil {
		return err
	}
	if wantNonce != nil && a.Nonce != hex.EncodeToString(wantNonce) {
		return fmt.Errorf("%w: got %q", ErrNonce, a.Nonce)
	}
	k, ok := v.Keys[a.KeyID]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownKey, a.KeyID)
	}
	if k.Development != a.Development {
		return fmt.Errorf("%w: development flag does not match key %s", ErrMalformed, k.ID)
	}
	if v.Production && k.Development {
		return fmt.Errorf("%w: key %s", ErrDevelopmentKey, k.ID)
	}
	msg, err := c.SignedBytes()
	if err != nil {
		return err
	}
	edSig, err := base64.StdEncoding.DecodeString(a.Signatures.Ed25519)
	if err != nil || !ed25519.Verify(k.Ed25519, msg, edSig) {
		return fmt.Errorf("%w: ed25519 (key %s)", ErrSignature, k.ID)
	}
	if !v.Ed25519Only {
		mlSig, err := base64.StdEncoding.DecodeString(a.Signatures.MLDSA65)
		if err != nil || k.MLDSA65 == nil || !mldsa65.Verify(k.MLDSA65, msg, nil, mlSig) {
			return fmt.Errorf("%w: ml-dsa-65 (key %s)", ErrSignature, k.ID)
		}
	}
	ts := a.Time()
	if ts.Before(k.NotBefore) || (!k.NotAfter.IsZero() && ts.After(k.NotAfter)) {
		return fmt.Errorf("%w: %s not in [%s, %s] of key %s", ErrKeyWindow, ts.Format(time.RFC3339), k.NotBefore.Format(time.RFC3339), k.NotAfter.Format(time.RFC3339), k.ID)
	}
	maxAge := v.MaxAge
	if maxAge <= 0 {
		maxAge = 30 * time.Second
	}
	age := now.Sub(ts)
	if age > maxAge {
		return &StaleAttestation{Age: age, MaxAge: maxAge}
	}
	if -age > maxAge {
		return fmt.Errorf("%w: %v ahead", ErrFuture, -age)
	}
	if v.RequireTrusted {
		return RequireTrusted(a)
	}
	return nil
}

// RequireTrusted returns nil if a (already verified) carries a signed
// integrity state of "trusted", else ErrIntegrityNotTrusted saying what
// it carries.
func RequireTrusted(a *Attestation) error {
	switch {
	case a.Version < IntegrityVersion:
		return fmt.Errorf("%w: a version %d attestation carries no integrity state", ErrIntegrityNotTrusted, a.Version)
	case a.Integrity == nil:
		return fmt.Errorf("%w: the node runs no integrity checks", ErrIntegrityNotTrusted)
	case a.Integrity.State != IntegrityTrusted:
		return fmt.Errorf("%w: %s", ErrIntegrityNotTrusted, a.Integrity)
	}
	return nil
}

// ErrNoKeyValid reports that no key of the set is valid at t.
func ErrNoKeyValid(t time.Time) error {
	return fmt.Errorf("%w: none valid at %s", ErrNoKey, t.UTC().Format(time.RFC3339))
}
