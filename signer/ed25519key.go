package signer

import (
	"crypto/ed25519"
	"errors"

	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

// LockedEd25519 is an Ed25519 private key whose seed, secret scalar and
// nonce prefix live in locked memory (see edlocked.go). It exists so that
// other packages, such as the Roughtime server, can sign with a long-term
// key without ever holding it in ordinary heap. Its signatures are those
// of crypto/ed25519 for the same seed. It is safe for concurrent use.
type LockedEd25519 struct {
	key *edKey
}

// NewLockedEd25519 expands a 32-byte seed (RFC 8032's private key) into a
// key in locked memory. The seed is copied; the caller wipes its own copy.
// Like lockedmem.New, without opts.RequireLock a failed mlock returns the
// usable, unlocked key together with an error wrapping lockedmem.ErrLock,
// so that the caller can log it and go on.
func NewLockedEd25519(seed []byte, opts lockedmem.Options) (*LockedEd25519, error) {
	key, err := newEdKey(seed, opts)
	if key == nil {
		return nil, err
	}
	return &LockedEd25519{key: key}, err
}

// LoadLockedEd25519 reads an Ed25519 PKCS#8 PEM key file under policy p
// (the signing keys' file policy: owner, mode, no foreign symlinks) and
// returns it as a LockedEd25519. The seed passes through locked memory
// only. A failed mlock without opts.RequireLock is reported as in
// NewLockedEd25519: a usable key and an error wrapping lockedmem.ErrLock.
func LoadLockedEd25519(path string, p keyfile.Policy, opts lockedmem.Options) (*LockedEd25519, error) {
	seed, seedErr := keyfile.LoadSeed(path, keyfile.Ed25519, p, opts)
	if seed == nil {
		return nil, seedErr
	}
	defer seed.Close()
	key, err := NewLockedEd25519(seed.Bytes(), opts)
	if key == nil {
		return nil, err
	}
	// Either error can only be a lock failure here; report one of them.
	if err == nil {
		err = seedErr
	}
	return key, err
}

// Sign returns the Ed25519 signature of msg (plain Ed25519, no pre-hash,
// no context). It fails only after Close.
func (k *LockedEd25519) Sign(msg []byte) ([]byte, error) {
	if k == nil {
		return nil, errNilLockedKey
	}
	return k.key.sign(msg)
}

// Public returns the public key. It stays valid after Close.
func (k *LockedEd25519) Public() ed25519.PublicKey {
	if k == nil {
		return nil
	}
	return k.key.public()
}

// Locked reports whether the key's memory is locked (mlock succeeded).
func (k *LockedEd25519) Locked() bool {
	if k == nil {
		return false
	}
	k.key.mu.Lock()
	defer k.key.mu.Unlock()
	return k.key.sec != nil && k.key.buf.Locked()
}

// Close wipes and releases the key's locked memory; Sign fails afterwards.
// It is safe to call more than once, and on nil.
func (k *LockedEd25519) Close() error {
	if k == nil {
		return nil
	}
	return k.key.Close()
}

var errNilLockedKey = errors.New("signer: nil LockedEd25519")
