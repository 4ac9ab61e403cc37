package signer

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// DevKeyPrefix starts the key id of every development key, so that a
// development key can be recognised from the id alone.
const DevKeyPrefix = "dev-"

// PublicKey is the public half of a hybrid key, as published on /keys.
type PublicKey struct {
	ID          string
	Development bool
	Ed25519     ed25519.PublicKey
	MLDSA65     *mldsa65.PublicKey
	NotBefore   time.Time
	NotAfter    time.Time // zero: no end
}

// KeyPair is a hybrid signing key. Its private parts never leave the
// package and are redacted in logs.
type KeyPair struct {
	pub PublicKey
	ed  ed25519.PrivateKey
	ml  *mldsa65.PrivateKey
}

// GenerateDevelopment makes a fresh development key pair from rand, valid
// from now for the given lifetime. Its id starts with DevKeyPrefix.
func GenerateDevelopment(rand io.Reader, now time.Time, lifetime time.Duration) (*KeyPair, error) {
	edPub, edPriv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("signer: generate ed25519: %w", err)
	}
	mlPub, mlPriv, err := mldsa65.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("signer: generate ml-dsa-65: %w", err)
	}
	return newKeyPair(edPriv, edPub, mlPriv, mlPub, true, now, lifetime), nil
}

func newKeyPair(edPriv ed25519.PrivateKey, edPub ed25519.PublicKey, mlPriv *mldsa65.PrivateKey, mlPub *mldsa65.PublicKey, dev bool, now time.Time, lifetime time.Duration) *KeyPair {
	kp := &KeyPair{ed: edPriv, ml: mlPriv, pub: PublicKey{
		Development: dev, Ed25519: edPub, MLDSA65: mlPub, NotBefore: now,
	}}
	if lifetime > 0 {
		kp.pub.NotAfter = now.Add(lifetime)
	}
	kp.pub.ID = KeyID(edPub, mlPub, dev)
	return kp
}

// KeyID derives a key id from both public keys: the first 8 bytes of
// SHA-256(ed25519 || ml-dsa-65) in hex, prefixed by DevKeyPrefix for
// development keys.
func KeyID(ed ed25519.PublicKey, ml *mldsa65.PublicKey, dev bool) string {
	h := sha256.New()
	h.Write(ed)
	h.Write(ml.Bytes())
	id := hex.EncodeToString(h.Sum(nil)[:8])
	if dev {
		return DevKeyPrefix + id
	}
	return id
}

// Public returns the public half.
func (k *KeyPair) Public() PublicKey { return k.pub }

// ID returns the key id.
func (k *KeyPair) ID() string { return k.pub.ID }

// LogValue redacts the key: only its id and kind are ever logged.
func (k *KeyPair) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", k.pub.ID), slog.Bool("development", k.pub.Development))
}

// sign returns both signatures over msg.
func (k *KeyPair) sign(msg []byte) (edSig, mlSig []byte, err error) {
	edSig = ed25519.Sign(k.ed, msg)
	mlSig = make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(k.ml, msg, nil, false, mlSig); err != nil {
		return nil, nil, fmt.Errorf("signer: ml-dsa-65 sign: %w", err)
	}
	return edSig, mlSig, nil
}
