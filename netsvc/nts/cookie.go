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

// masterKey is one cookie sealing key, expanded once when it is made:
// every cookie sealed or opened under it reuses the AES key schedules.
type masterKey struct {
	id      uint32
	aead    *siv.AEAD
	created time.Time
}

// keyRing holds the current cookie master key and the previous ones still
// accepted, newest first. Cookies are sealed under the newest key only.
// Readers (every NTS request) load an immutable snapshot without locking;
// rotations, rare, take mu and publish a new one.
type keyRing struct {
	rand io.Reader
	now  func() time.Time
	keep int

	mu   sync.Mutex
	keys atomic.Pointer[[]masterKey]
}

func newKeyRing(rand io.Reader, now func() time.Time, keep int) (*keyRing, error) {
	r := &keyRing{rand: rand, now: now, keep: keep}
	if err := r.rotate(); err != nil {
		return nil, err
	}
	return r, nil
}

// rotate makes a fresh random key the sealing key and forgets the oldest
// one beyond keep. Key ids follow each other from a random start, so that
// a restarted server does not mistake old cookies for its own.
func (r *keyRing) rotate() error {
	var buf [4 + keyLen]byte
	if _, err := io.ReadFull(r.rand, buf[:]); err != nil {
		return fmt.Errorf("nts: new cookie key: %w", err)
	}
	aead, err := siv.New(buf[4:])
	clear(buf[4:])
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snapshot()
	id := binary.BigEndian.Uint32(buf[:4])
	if len(old) > 0 {
		id = old[0].id + 1
	}
	keys := make([]masterKey, 0, r.keep)
	keys = append(keys, masterKey{id: id, aead: aead, created: r.now()})
	for _, k := range old {
		if len(keys) == r.keep {
			break
		}
		keys = append(keys, k)
	}
	r.keys.Store(&keys)
	return nil
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
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, k.id)
	dst = append(dst, nonce[:]...)
	binary.BigEndian.PutUint16(plain[0:], aeadSIV256)
	binary.BigEndian.PutUint16(plain[2:], 0)
	copy(plain[4:], keys.C2S[:])
	copy(plain[4+keyLen:], keys.S2C[:])
	dst = k.aead.Seal(dst, nonce[:], plain[:], dst[start:start+4])
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
	_, err := k.aead.Open(plain[:0], cookie[4:4+cookieNonceLen], cookie[4+cookieNonceLen:], cookie[:4])
	if err != nil || binary.BigEndian.Uint16(plain[0:]) != aeadSIV256 || binary.BigEndian.Uint16(plain[2:]) != 0 {
		return errCookie
	}
	copy(keys.C2S[:], plain[4:])
	copy(keys.S2C[:], plain[4+keyLen:])
	return nil
}
