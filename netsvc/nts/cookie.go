package nts

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aunsorm/timenode/netsvc/nts/siv"
)

// aeadSIV256 is the only AEAD algorithm served: AEAD_AES_SIV_CMAC_256.
const aeadSIV256 = siv.AEADAESSIVCMAC256

// keyLen is the length of each of the C2S and S2C keys.
const keyLen = siv.KeySize

// Cookie layout: key id (4) || nonce (16) || SIV tag (16) || ciphertext of
// AEAD id (2) || reserved zero (2) || C2S (32) || S2C (32). The reserved
// word keeps the cookie a multiple of 4 bytes, as NTP extension fields
// and clients (chrony among them) want.
const (
	cookieNonceLen = 16
	cookiePlainLen = 2 + 2 + 2*keyLen
	// CookieLen is the length of every cookie the server issues.
	CookieLen = 4 + cookieNonceLen + siv.TagSize + cookiePlainLen
)

// errCookie is any cookie that does not open: unknown or expired key id,
// wrong length, bad tag, unknown algorithm.
var errCookie = errors.New("nts: cookie rejected")

// masterKey is one cookie sealing key, expanded once when it is made or
// loaded: every cookie sealed or opened under it reuses the AES key
// schedules. secret is kept only to write the key file.
type masterKey struct {
	id     uint32
	secret [keyLen]byte
	// aead is the key with its id, the associated data of every cookie
	// under it, already absorbed.
	aead    *siv.Prefix
	created time.Time
}

// newMasterKey expands secret for the key id.
func newMasterKey(id uint32, secret *[keyLen]byte, created time.Time) (masterKey, error) {
	a, err := siv.New(secret[:])
	if err != nil {
		return masterKey{}, err
	}
	return masterKey{id: id, secret: *secret, aead: a.Prefix(binary.BigEndian.AppendUint32(nil, id)), created: created}, nil
}

// keyRing holds the current cookie master key and the previous ones still
// accepted, newest first. Cookies are sealed under the newest key only.
// Readers (every NTS request) load an immutable snapshot without locking;
// rotations, rare, take mu and publish a new one.
type keyRing struct {
	rand io.Reader
	now  func() time.Time
	// keep bounds the keys kept, the current one included.
	keep int
	// grace is how long a key is accepted after the next one replaced it;
	// 0 means only keep counts.
	grace time.Duration
	// every is the rotation period: a key is retired at the latest one
	// period after it was made, even if no successor came (the server was
	// down); 0 means when its successor was made.
	every time.Duration
	// path is the key file; "" keeps the keys in memory only.
	path string

	mu   sync.Mutex
	keys atomic.Pointer[[]masterKey]
}

// newKeyRing returns a ring in memory only, with a fresh first key.
func newKeyRing(rand io.Reader, now func() time.Time, keep int) (*keyRing, error) {
	r := &keyRing{rand: rand, now: now, keep: keep}
	if err := r.rotate(); err != nil {
		return nil, err
	}
	return r, nil
}

// openKeyRing returns a ring kept in the file at path: the keys found there
// that are still within grace, plus a fresh one when the file is missing,
// holds no key still usable or its newest key is rotateEvery old (so that
// restarts more often than rotateEvery do not keep one key forever). The
// file is rewritten when anything changed. It reports whether it rotated.
func openKeyRing(path string, rand io.Reader, now func() time.Time, keep int, grace, rotateEvery time.Duration) (*keyRing, bool, error) {
	r := &keyRing{rand: rand, now: now, keep: keep, grace: grace, every: rotateEvery, path: path}
	loaded, err := r.loadKeyFile()
	if err != nil {
		return nil, false, err
	}
	keys := r.prune(loaded)
	r.keys.Store(&keys)
	if len(keys) == 0 || !r.now().Before(keys[0].created.Add(rotateEvery)) {
		return r, true, r.rotate()
	}
	if len(keys) != len(loaded) || !keys[0].created.Equal(loaded[0].created) {
		return r, false, r.save(keys)
	}
	return r, false, nil
}

// prune returns the keys still accepted now: at most keep, and none whose
// successor was made grace or more ago. A creation time in the future (the
// clock was stepped back, or was wrong when the key was made) is taken as
// now, so such a key lives one period from now, not until the clock
// catches up with it.
func (r *keyRing) prune(keys []masterKey) []masterKey {
	now := r.now()
	out := make([]masterKey, 0, min(len(keys), r.keep))
	for i, k := range keys {
		if len(out) == r.keep {
			break
		}
		if i > 0 && r.grace > 0 && !now.Before(r.retired(k, out[i-1]).Add(r.grace)) {
			break
		}
		if k.created.After(now) {
			k.created = now
		}
		out = append(out, k)
	}
	return out
}

// retired returns when k stopped sealing cookies: when next replaced it, or
// one period after k was made if that is earlier.
func (r *keyRing) retired(k, next masterKey) time.Time {
	if end := k.created.Add(r.every); r.every > 0 && end.Before(next.created) {
		return end
	}
	return next.created
}

// rotate makes a fresh random key the sealing key and drops the keys
// beyond keep or past their grace, then saves the ring to its file. The
// new keys are in use even when saving fails: rotating matters more than
// surviving a restart, and the error says the file is behind. Key ids
// follow each other from a random start, so that a server that lost its
// keys does not mistake old cookies for its own.
func (r *keyRing) rotate() error {
	var buf [4 + keyLen]byte
	defer clear(buf[:])
	if _, err := io.ReadFull(r.rand, buf[:]); err != nil {
		return fmt.Errorf("nts: new cookie key: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snapshot()
	id := binary.BigEndian.Uint32(buf[:4])
	if len(old) > 0 {
		id = old[0].id + 1
	}
	k, err := newMasterKey(id, (*[keyLen]byte)(buf[4:]), r.now())
	if err != nil {
		return err
	}
	keys := r.prune(append([]masterKey{k}, old...))
	r.keys.Store(&keys)
	return r.save(keys)
}

// snapshot returns the kept keys, newest first; callers must not modify it.
func (r *keyRing) snapshot() []masterKey {
	if p := r.keys.Load(); p != nil {
		return *p
	}
	return nil
}

// current returns the sealing key.
func (r *keyRing) current() *masterKey { return &r.snapshot()[0] }

// find returns the key with id, if it is still kept.
func (r *keyRing) find(id uint32) (*masterKey, bool) {
	keys := r.snapshot()
	for i := range keys {
		if keys[i].id == id {
			return &keys[i], true
		}
	}
	return nil, false
}

// ids returns the kept key ids, newest first.
func (r *keyRing) ids() []uint32 {
	keys := r.snapshot()
	ids := make([]uint32, len(keys))
	for i, k := range keys {
		ids[i] = k.id
	}
	return ids
}

// Keys are the two keys of an NTS association, which a cookie carries:
// C2S authenticates requests, S2C replies.
type Keys struct {
	C2S, S2C [keyLen]byte
}

// appendCookie seals keys under the current master key and appends the
// cookie to dst, with a fresh random nonce.
func (r *keyRing) appendCookie(dst []byte, keys *Keys) ([]byte, error) {
	var nonce [cookieNonceLen]byte
	if _, err := io.ReadFull(r.rand, nonce[:]); err != nil {
		return dst, fmt.Errorf("nts: cookie nonce: %w", err)
	}
	var plain [cookiePlainLen]byte
	return r.appendCookieNonce(dst, keys, &nonce, &plain), nil
}

// appendCookieNonce seals keys under the current master key with nonce and
// appends the cookie to dst; plain is scratch for the plaintext, wiped
// after use (the NTP path passes pooled memory, so it costs no allocation).
// The key id is the associated data, so a cookie cannot be moved under
// another key's id.
func (r *keyRing) appendCookieNonce(dst []byte, keys *Keys, nonce *[cookieNonceLen]byte, plain *[cookiePlainLen]byte) []byte {
	k := r.current()
	dst = binary.BigEndian.AppendUint32(dst, k.id)
	dst = append(dst, nonce[:]...)
	binary.BigEndian.PutUint16(plain[0:], aeadSIV256)
	binary.BigEndian.PutUint16(plain[2:], 0)
	copy(plain[4:], keys.C2S[:])
	copy(plain[4+keyLen:], keys.S2C[:])
	dst = k.aead.Seal(dst, nonce[:], plain[:])
	clear(plain[:])
	return dst
}

// openCookie returns the keys sealed in cookie.
func (r *keyRing) openCookie(cookie []byte) (Keys, error) {
	var keys Keys
	var plain [cookiePlainLen]byte
	err := r.openCookieInto(&keys, cookie, &plain)
	return keys, err
}

// openCookieInto opens cookie into keys, with plain as scratch for the
// plaintext (wiped after use).
func (r *keyRing) openCookieInto(keys *Keys, cookie []byte, plain *[cookiePlainLen]byte) error {
	if len(cookie) != CookieLen {
		return errCookie
	}
	k, ok := r.find(binary.BigEndian.Uint32(cookie))
	if !ok {
		return errCookie
	}
	defer clear(plain[:])
	_, err := k.aead.Open(plain[:0], cookie[4:4+cookieNonceLen], cookie[4+cookieNonceLen:])
	if err != nil || binary.BigEndian.Uint16(plain[0:]) != aeadSIV256 || binary.BigEndian.Uint16(plain[2:]) != 0 {
		return errCookie
	}
	copy(keys.C2S[:], plain[4:])
	copy(keys.S2C[:], plain[4+keyLen:])
	return nil
}
