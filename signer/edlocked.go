package signer

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"filippo.io/edwards25519"

	"github.com/aunsorm/timenode/signer/lockedmem"
)

// This file signs with Ed25519 (RFC 8032, section 5.1.6) so that the
// secrets stay in locked memory. crypto/ed25519 cannot: since Go 1.25 Sign
// expands the key into a cache on the ordinary heap that lives as long as
// the key and is never wiped (before, it expanded it again at every
// call), and NewKeyFromSeed returns the seed in a fresh heap slice.
//
// At rest, the seed, the secret scalar s and the prefix (the two halves of
// SHA-512(seed)) live only in edSecret, placed in a lockedmem buffer.
// Per signature, the nonce digest SHA-512(prefix || M) and the nonce r sit
// in scratch fields of the same buffer and are zeroed before sign returns.
//
// What still transits ordinary memory, beyond what Go code can control:
//   - registers, and stack temporaries inside the libraries that this code
//     cannot reach: crypto/sha512's Sum works on a stack copy of the digest
//     state and returns the digest in a stack array before appending it to
//     our buffer; edwards25519 copies the clamped half-digest into a 64-byte
//     stack array (SetBytesWithClamping), splits wide inputs into stack
//     buffers (SetUniformBytes), recodes the scalar of a base-point
//     multiplication into stack digits (ScalarBaseMult), and copies the
//     addend of MultiplyAdd (our r) to the stack. None of these is wiped;
//     the next calls overwrite them, and a goroutine stack that grows is
//     copied and the old one freed as it is;
//   - the SHA-512 state, a heap object of edKey that absorbs the seed and
//     the prefix: wipeHash clears it after each use, because Reset alone
//     rewinds the chaining value but leaves the last partial block, the
//     secret bytes themselves, in the state's buffer.
//
// The public values (A, R, k = SHA-512(R || A || M) mod L, S) are ordinary
// stack or heap values.

// edSecret is the locked part of an edKey. It holds no Go pointers, so it
// can be placed in a lockedmem buffer.
type edSecret struct {
	seed   [ed25519.SeedSize]byte
	pub    [ed25519.PublicKeySize]byte
	prefix [32]byte            // upper half of SHA-512(seed)
	s      edwards25519.Scalar // clamped lower half of SHA-512(seed), mod L

	// Scratch for one operation at a time (edKey.mu); zero in between.
	wide [sha512.Size]byte   // a SHA-512 output
	r    edwards25519.Scalar // the nonce
}

// edKey is an Ed25519 private key kept in locked memory. Its sign gives
// the same signatures as crypto/ed25519 for the same seed. It is also a
// crypto.Signer (plain Ed25519 only), for x509.
type edKey struct {
	pub ed25519.PublicKey // a copy in ordinary memory: public, and still valid after Close

	// mu guards the scratch in sec, h, and Close. It serialises the
	// signatures of one key, some 15 µs each.
	mu  sync.Mutex
	buf *lockedmem.Buffer
	sec *edSecret // placed in buf; nil after Close
	h   hash.Hash // SHA-512, always Reset (and wiped after secrets) between uses
}

// errEdKeyClosed is returned by sign after Close.
var errEdKeyClosed = fmt.Errorf("signer: ed25519 key: %w", lockedmem.ErrClosed)

// newEdKey expands a 32-byte seed (RFC 8032's private key; the caller
// wipes it) into a key in locked memory. Like lockedmem.New, without
// opts.RequireLock a failed mlock returns the key unlocked together with
// the error wrapping lockedmem.ErrLock.
func newEdKey(seed []byte, opts lockedmem.Options) (*edKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signer: ed25519 seed of %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	buf, lockErr := lockedmem.New(lockedmem.SizeOf[edSecret](), opts)
	if buf == nil {
		return nil, lockErr
	}
	sec, err := lockedmem.Place[edSecret](buf)
	if err != nil {
		_ = buf.Close()
		return nil, err
	}
	*sec = edSecret{}
	key := &edKey{buf: buf, sec: sec, h: sha512.New()}

	copy(sec.seed[:], seed)
	key.h.Write(sec.seed[:])
	// Sum appends; wide[:0] has room for the whole digest, so it is
	// written in place, never to a new slice.
	key.h.Sum(sec.wide[:0])
	wipeHash(key.h)
	if _, err := sec.s.SetBytesWithClamping(sec.wide[:32]); err != nil {
		_ = key.Close()
		return nil, fmt.Errorf("signer: ed25519 secret scalar: %w", err)
	}
	copy(sec.prefix[:], sec.wide[32:])
	clear(sec.wide[:])

	var a edwards25519.Point
	a.ScalarBaseMult(&sec.s)
	copy(sec.pub[:], a.Bytes())
	key.pub = append(ed25519.PublicKey(nil), sec.pub[:]...)
	return key, lockErr
}

// zeroBlock overwrites a SHA-512 block buffer; see wipeHash.
var zeroBlock [sha512.BlockSize]byte

// wipeHash resets h and clears what it buffered. Reset rewinds the state
// but keeps the bytes of the last partial block; from an empty state, one
// byte and then a block less one byte are copied into that buffer, zeros
// over all of it (a whole block written at once would be hashed straight
// from zeroBlock and leave the buffer alone).
func wipeHash(h hash.Hash) {
	h.Reset()
	h.Write(zeroBlock[:1])
	h.Write(zeroBlock[1:])
	h.Reset()
}

// public returns the public key A.
func (key *edKey) public() ed25519.PublicKey { return key.pub }

// sign returns the Ed25519 signature R || S of msg.
func (key *edKey) sign(msg []byte) ([]byte, error) {
	sig := make([]byte, ed25519.SignatureSize)
	key.mu.Lock()
	defer key.mu.Unlock()
	sec := key.sec
	if sec == nil {
		return nil, errEdKeyClosed
	}

	// r = SHA-512(prefix || M) mod L, a secret: only in sec's scratch.
	key.h.Write(sec.prefix[:])
	key.h.Write(msg)
	key.h.Sum(sec.wide[:0])
	wipeHash(key.h)
	if _, err := sec.r.SetUniformBytes(sec.wide[:]); err != nil {
		clear(sec.wide[:])
		return nil, fmt.Errorf("signer: ed25519 nonce: %w", err)
	}
	clear(sec.wide[:])

	// R = rB.
	var rPoint edwards25519.Point
	rPoint.ScalarBaseMult(&sec.r)
	copy(sig[:32], rPoint.Bytes())

	// k = SHA-512(R || A || M) mod L: public, so the state needs no wipe.
	// The digest goes to the scratch only because a stack array would
	// escape to the heap through the hash.Hash interface.
	key.h.Write(sig[:32])
	key.h.Write(sec.pub[:])
	key.h.Write(msg)
	key.h.Sum(sec.wide[:0])
	key.h.Reset()
	var kScalar edwards25519.Scalar
	_, err := kScalar.SetUniformBytes(sec.wide[:])
	clear(sec.wide[:])
	if err != nil {
		sec.r = edwards25519.Scalar{}
		return nil, fmt.Errorf("signer: ed25519 challenge: %w", err)
	}

	// S = r + k s mod L.
	var s edwards25519.Scalar
	s.MultiplyAdd(&kScalar, &sec.s, &sec.r)
	sec.r = edwards25519.Scalar{}
	copy(sig[32:], s.Bytes())
	return sig, nil
}

// Public returns the public key, for crypto.Signer.
func (key *edKey) Public() crypto.PublicKey { return key.public() }

// Sign signs message as plain Ed25519 (opts hashing nothing, no context),
// for crypto.Signer; rand is not used, Ed25519 being deterministic.
// Ed25519ph and Ed25519ctx are refused.
func (key *edKey) Sign(_ io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.Hash(0) {
		return nil, errors.New("signer: ed25519: only plain Ed25519 (no pre-hash) is supported")
	}
	if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
		return nil, errors.New("signer: ed25519: contexts are not supported")
	}
	return key.sign(message)
}

// Close wipes and releases the locked memory and the hash state. Signing
// afterwards fails. It is safe to call more than once, and on nil.
func (key *edKey) Close() error {
	if key == nil {
		return nil
	}
	key.mu.Lock()
	defer key.mu.Unlock()
	if key.sec == nil {
		return nil
	}
	key.sec = nil
	wipeHash(key.h)
	return key.buf.Close()
}
