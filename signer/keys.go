package signer

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aunsorm/timenode/signer/lockedmem"
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
	// Chain is the attestation certificate chain (DER, node certificate
	// first); nil for a key without a certificate (development only).
	Chain [][]byte
	// Endorsement, if set, is this key's endorsement by the key it
	// replaces.
	Endorsement *Endorsement
}

// ValidAt reports whether t is inside the key's window.
func (k PublicKey) ValidAt(t time.Time) bool {
	return !t.Before(k.NotBefore) && (k.NotAfter.IsZero() || !t.After(k.NotAfter))
}

// KeyOptions describe a key pair made from seeds.
type KeyOptions struct {
	Development         bool
	NotBefore, NotAfter time.Time // NotAfter zero: no end
	Chain               [][]byte
	Lock                lockedmem.Options
}

// KeyPair is a hybrid signing key. The private keys live in locked memory
// (see package lockedmem), both wiped by Close: the Ed25519 seed, secret
// scalar and prefix (edKey, which signs without copying them to the
// ordinary heap) and the expanded ML-DSA-65 private key. They never leave
// the package and are redacted in logs.
type KeyPair struct {
	pub    PublicKey
	mu     sync.RWMutex // write-held by Close
	edKey  *edKey
	mlBuf  *lockedmem.Buffer
	ml     *mldsa65.PrivateKey // placed in mlBuf
	locked bool
}

// NewKeyPair makes a key pair from the two 32-byte seeds (the caller
// wipes them). With opts.Lock.RequireLock a failed mlock is an error;
// otherwise the key is kept in unlocked pages and Locked reports false.
func NewKeyPair(edSeed, mlSeed []byte, opts KeyOptions) (*KeyPair, error) {
	if len(edSeed) != ed25519.SeedSize || len(mlSeed) != mldsa65.SeedSize {
		return nil, fmt.Errorf("signer: new key pair: seeds of %d and %d bytes, want 32", len(edSeed), len(mlSeed))
	}
	kp := &KeyPair{locked: true}
	var lockErr error
	var err error
	var mlPub *mldsa65.PublicKey
	// The seed goes straight into locked memory and is expanded there;
	// ed25519.NewKeyFromSeed would return it in a heap slice.
	kp.edKey, err = newEdKey(edSeed, opts.Lock)
	if kp.edKey == nil {
		return nil, fmt.Errorf("signer: ed25519 key memory: %w", err)
	}
	lockErr = errors.Join(lockErr, err)
	kp.mlBuf, err = lockedmem.New(lockedmem.SizeOf[mldsa65.PrivateKey](), opts.Lock)
	if kp.mlBuf == nil {
		kp.edKey.Close()
		return nil, fmt.Errorf("signer: ml-dsa-65 key memory: %w", err)
	}
	lockErr = errors.Join(lockErr, err)
	kp.locked = lockErr == nil

	var s [mldsa65.SeedSize]byte
	copy(s[:], mlSeed)
	_, heapML := mldsa65.NewKeyFromSeed(&s)
	clear(s[:])
	if kp.ml, err = lockedmem.Place[mldsa65.PrivateKey](kp.mlBuf); err != nil {
		*heapML = mldsa65.PrivateKey{}
		kp.Close()
		return nil, fmt.Errorf("signer: ml-dsa-65 key memory: %w", err)
	}
	*kp.ml = *heapML
	// circl's public key points into the private key it came with (the
	// expanded matrix A): rebuild it from its bytes before the wipe.
	mlPub = new(mldsa65.PublicKey)
	if err := mlPub.UnmarshalBinary(heapML.Public().(*mldsa65.PublicKey).Bytes()); err != nil {
		*heapML = mldsa65.PrivateKey{}
		kp.Close()
		return nil, fmt.Errorf("signer: ml-dsa-65 public key: %w", err)
	}
	*heapML = mldsa65.PrivateKey{}

	edPub := append(ed25519.PublicKey(nil), kp.edKey.public()...)
	kp.pub = PublicKey{Development: opts.Development, Ed25519: edPub, MLDSA65: mlPub,
		NotBefore: opts.NotBefore, NotAfter: opts.NotAfter, Chain: opts.Chain}
	kp.pub.ID = KeyID(edPub, mlPub, opts.Development)
	return kp, nil
}

// GenerateDevelopment makes a fresh development key pair from rand, valid
// from now for the given lifetime. Its id starts with DevKeyPrefix. Its
// memory is locked when possible but not required to be.
func GenerateDevelopment(rand io.Reader, now time.Time, lifetime time.Duration) (*KeyPair, error) {
	seeds := make([]byte, 64)
	defer clear(seeds)
	if _, err := io.ReadFull(rand, seeds); err != nil {
		return nil, fmt.Errorf("signer: generate development key: %w", err)
	}
	opts := KeyOptions{Development: true, NotBefore: now}
	if lifetime > 0 {
		opts.NotAfter = now.Add(lifetime)
	}
	return NewKeyPair(seeds[:32], seeds[32:], opts)
}

// KeyID derives a key id from both public keys: the first 8 bytes of
// SHA-256(ed25519 || ml-dsa-65) in hex, prefixed by DevKeyPrefix for
// development keys.
func KeyID(ed ed25519.PublicKey, ml *mldsa65.PublicKey, dev bool) string {
	id := KeyFingerprint(ed, ml)[:16]
	if dev {
		return DevKeyPrefix + id
	}
	return id
}

// KeyFingerprint is the full SHA-256(ed25519 || ml-dsa-65) in hex. It
// identifies a key that has no certificate; development and simulation
// clients may pin it instead of a certificate fingerprint.
func KeyFingerprint(ed ed25519.PublicKey, ml *mldsa65.PublicKey) string {
	h := sha256.New()
	h.Write(ed)
	h.Write(ml.Bytes())
	return hex.EncodeToString(h.Sum(nil))
}

// Public returns the public half.
func (k *KeyPair) Public() PublicKey { return k.pub }

// ID returns the key id.
func (k *KeyPair) ID() string { return k.pub.ID }

// Locked reports whether the private keys are in mlocked memory.
func (k *KeyPair) Locked() bool { return k.locked }

// LogValue redacts the key: only its id and kind are ever logged.
func (k *KeyPair) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", k.pub.ID), slog.Bool("development", k.pub.Development),
		slog.Bool("mlocked", k.locked))
}

// String redacts the key for fmt as well.
func (k *KeyPair) String() string { return "KeyPair(" + k.pub.ID + ", private parts redacted)" }

// Close wipes and unmaps the private keys. Signing afterwards fails with
// ErrNoKey. It waits for signatures in progress.
func (k *KeyPair) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ml = nil
	return errors.Join(k.edKey.Close(), k.mlBuf.Close())
}

// withKeys runs fn with the private keys, holding off Close.
func (k *KeyPair) withKeys(fn func(*edKey, *mldsa65.PrivateKey) error) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.ml == nil {
		return fmt.Errorf("%w: key %s was closed", ErrNoKey, k.pub.ID)
	}
	return fn(k.edKey, k.ml)
}

// sign returns both signatures over msg. Ed25519 signs with edKey, not
// crypto/ed25519, whose Sign would expand the key into its own heap cache.
// ML-DSA-65 signs in its deterministic variant (FIPS 204 with rnd = 0^32)
// and an empty context.
func (k *KeyPair) sign(msg []byte) (edSig, mlSig []byte, err error) {
	err = k.withKeys(func(ed *edKey, ml *mldsa65.PrivateKey) error {
		var err error
		if edSig, err = ed.sign(msg); err != nil {
			return err
		}
		mlSig = make([]byte, mldsa65.SignatureSize)
		if err := mldsa65.SignTo(ml, msg, nil, false, mlSig); err != nil {
			return fmt.Errorf("signer: ml-dsa-65 sign: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return edSig, mlSig, nil
}
