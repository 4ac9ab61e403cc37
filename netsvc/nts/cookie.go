package nts

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
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

// masterKey is one cookie sealing key.
type masterKey struct {
	id      uint32
	aead    *siv.AEAD
	created time.Time
}

// keyRing holds the current cookie master key and the previous ones still
// accepted, newest first. Cookies are sealed under the newest key only.
type keyRing struct {
	rand io.Reader
	now  func() time.Time
	keep int

	mu   sync.RWMutex
	keys []masterKey
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
	id := binary.BigEndian.Uint32(buf[:4])
	if len(r.keys) > 0 {
		id = r.keys[0].id + 1
	}
	keys := make([]masterKey, 0, r.keep)
	keys = append(keys, masterKey{id: id, aead: aead, created: r.now()})
	for _, k := range r.keys {
		if len(keys) == r.keep {
			break
		}
		keys = append(keys, k)
	}
	r.keys = keys
	return nil
}

// current returns the sealing key.
func (r *keyRing) current() masterKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys[0]
}

// find returns the key with id, if it is still kept.
func (r *keyRing) find(id uint32) (masterKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.keys {
		if k.id == id {
			return k, true
		}
	}
	return masterKey{}, false
}

// ids returns the kept key ids, newest first.
func (r *keyRing) ids() []uint32 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]uint32, len(r.keys))
	for i, k := range r.keys {
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
// cookie to dst. The key id is the associated data, so a cookie cannot be
// moved under another key's id.
func (r *keyRing) appendCookie(dst []byte, keys *Keys) ([]byte, error) {
	k := r.current()
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, k.id)
	var nonce [cookieNonceLen]byte
	if _, err := io.ReadFull(r.rand, nonce[:]); err != nil {
		return dst[:start], fmt.Errorf("nts: cookie nonce: %w", err)
	}
	dst = append(dst, nonce[:]...)
	var plain [cookiePlainLen]byte
	binary.BigEndian.PutUint16(plain[0:], aeadSIV256)
	copy(plain[4:], keys.C2S[:])
	copy(plain[4+keyLen:], keys.S2C[:])
	dst = k.aead.Seal(dst, nonce[:], plain[:], dst[start:start+4])
	clear(plain[:])
	return dst, nil
}

// openCookie returns the keys sealed in cookie.
func (r *keyRing) openCookie(cookie []byte) (Keys, error) {
	var keys Keys
	if len(cookie) != CookieLen {
		return keys, errCookie
	}
	k, ok := r.find(binary.BigEndian.Uint32(cookie))
	if !ok {
		return keys, errCookie
	}
	var plain [cookiePlainLen]byte
	_, err := k.aead.Open(plain[:0], cookie[4:4+cookieNonceLen], cookie[4+cookieNonceLen:], cookie[:4])
	if err != nil || binary.BigEndian.Uint16(plain[0:]) != aeadSIV256 || binary.BigEndian.Uint16(plain[2:]) != 0 {
		clear(plain[:])
		return keys, errCookie
	}
	copy(keys.C2S[:], plain[4:])
	copy(keys.S2C[:], plain[4+keyLen:])
	clear(plain[:])
	return keys, nil
}
