// Package siv implements AES-SIV (RFC 5297), the deterministic and
// nonce-based authenticated encryption that NTS (RFC 8915) requires as
// AEAD_AES_SIV_CMAC_256 (AEAD algorithm 15), over crypto/aes.
//
// The key is split in two halves of equal size: the first keys the CMAC of
// the S2V construction, the second keys AES-CTR. A 32-byte key is
// AEAD_AES_SIV_CMAC_256 (two AES-128 keys); 48 and 64 bytes give the -384
// and -512 variants. The output of Seal is the 16-byte synthetic IV followed
// by the ciphertext, the layout RFC 5297 and RFC 8915 use on the wire.
//
// SIV is misuse-resistant: reusing a nonce reveals only whether the same
// plaintext was sealed under the same associated data, never the key
// stream, which is why NTS servers can seal cookies and replies with random
// nonces without a counter.
package siv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
)

// AEAD identifiers (IANA "AEAD Algorithms" registry) of the SIV variants.
const (
	AEADAESSIVCMAC256 = 15
	AEADAESSIVCMAC384 = 16
	AEADAESSIVCMAC512 = 17
)

// KeySize is the key size of AEAD_AES_SIV_CMAC_256, the one NTS mandates.
const KeySize = 32

// TagSize is the size of the synthetic IV that prefixes every ciphertext.
const TagSize = blockSize

// MaxAssociatedData is the largest number of associated data components
// Seal and Open take. S2V is only a PRF over at most 127 components
// (RFC 5297 section 7); the nonce and the plaintext take two of them.
const MaxAssociatedData = 125

// ErrOpen is returned by Open when the ciphertext is not authentic.
var ErrOpen = errors.New("siv: message authentication failed")

// AEAD is an AES-SIV key, ready to seal and open. It is safe for concurrent
// use: it holds no per-message state.
type AEAD struct {
	mac cmac
	// The CTR half is expanded on first use: an NTS server opens each
	// request's empty ciphertext with a key that comes fresh out of a
	// cookie and is never used again, and an empty message needs S2V only.
	ctrOnce sync.Once
	ctrKey  [32]byte // wiped once expanded
	ctrLen  int
	ctr     cipher.Block
}

// New returns the AEAD for key, which must be 32, 48 or 64 bytes.
func New(key []byte) (*AEAD, error) {
	switch len(key) {
	case 32, 48, 64:
	default:
		return nil, fmt.Errorf("siv: key of %d bytes, want 32, 48 or 64", len(key))
	}
	half := len(key) / 2
	macBlock, err := aes.NewCipher(key[:half])
	if err != nil {
		return nil, err
	}
	a := &AEAD{ctrLen: half}
	copy(a.ctrKey[:], key[half:])
	a.mac.init(macBlock)
	return a, nil
}

// ctrBlock returns the CTR half's block cipher, expanding it the first time.
func (a *AEAD) ctrBlock() cipher.Block {
	a.ctrOnce.Do(a.expandCTR)
	return a.ctr
}

func (a *AEAD) expandCTR() {
	b, err := aes.NewCipher(a.ctrKey[:a.ctrLen])
	clear(a.ctrKey[:])
	if err != nil {
		// New checked the length, the only thing NewCipher refuses.
		panic("siv: " + err.Error())
	}
	a.ctr = b
}

// Overhead is the number of bytes Seal adds to the plaintext.
func (a *AEAD) Overhead() int { return TagSize }

// ctrInline is the longest message whose key stream is made block by block
// in scratch memory; longer ones go to cipher.NewCTR, whose parallel
// assembly is worth its allocation. NTS cookies (68 bytes) stay inline.
const ctrInline = 8 * blockSize

// scratch is the per-call memory that reaches the block cipher. Slices
// passed to an interface method (cipher.Block.Encrypt) escape, so on the
// stack they would cost an allocation per call; pooled, they cost none.
type scratch struct {
	st cmacState
	q  [blockSize]byte // CTR counter
	ks [ctrInline]byte // key stream
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

// putScratch wipes sc, which held key stream and MAC state, and returns it.
func putScratch(sc *scratch) {
	*sc = scratch{}
	scratchPool.Put(sc)
}

// s2v computes the synthetic IV over the associated data, the nonce (when
// not empty) and the plaintext, in that order (RFC 5297 section 2.4). d0 is
// S2V's running value before ad: CMAC(K, <zero>), or a Prefix's value after
// the components it absorbed.
func (a *AEAD) s2v(sc *scratch, v *[blockSize]byte, d0 *[blockSize]byte, nonce, plaintext []byte, ad [][]byte) {
	var t [blockSize]byte
	d := *d0
	st := &sc.st
	for _, s := range ad {
		a.absorb(sc, &d, s)
	}
	if len(nonce) > 0 {
		a.absorb(sc, &d, nonce)
	}
	st.reset(&a.mac)
	if len(plaintext) >= blockSize {
		// T = plaintext xorend D: only the last block is changed.
		cut := len(plaintext) - blockSize
		st.write(plaintext[:cut])
		xor16(&t, (*[blockSize]byte)(plaintext[cut:]), &d)
		st.write(t[:])
	} else {
		dbl(&d)
		t = [blockSize]byte{}
		copy(t[:], plaintext)
		t[len(plaintext)] = 0x80
		xor16(&t, &t, &d)
		st.write(t[:])
	}
	st.finish(v)
}

// absorb folds one S2V component s into the running value d:
// D = dbl(D) xor CMAC(K, s).
func (a *AEAD) absorb(sc *scratch, d *[blockSize]byte, s []byte) {
	var t [blockSize]byte
	dbl(d)
	a.mac.sum(&sc.st, &t, s)
	xor16(d, d, &t)
}

// xorKeyStream runs AES-CTR from the synthetic IV with the two bits RFC 5297
// section 2.6 clears, so that implementations with a 64- or 32-bit counter
// need not carry. An empty message needs no key stream at all.
func (a *AEAD) xorKeyStream(sc *scratch, dst, src []byte, v *[blockSize]byte) {
	if len(src) == 0 {
		return
	}
	sc.q = *v
	sc.q[8] &= 0x7f
	sc.q[12] &= 0x7f
	if len(src) > ctrInline {
		cipher.NewCTR(a.ctrBlock(), sc.q[:]).XORKeyStream(dst, src)
		return
	}
	ctr := a.ctrBlock()
	for i := 0; i < len(src); i += blockSize {
		ctr.Encrypt(sc.ks[i:i+blockSize], sc.q[:])
		inc(&sc.q)
	}
	subtle.XORBytes(dst[:len(src)], src, sc.ks[:len(src)])
}

// inc adds one to the 128-bit big-endian counter q, as CTR mode does.
func inc(q *[blockSize]byte) {
	for i := blockSize - 1; i >= 0; i-- {
		q[i]++
		if q[i] != 0 {
			return
		}
	}
}

// Seal encrypts and authenticates plaintext together with the associated
// data components ad and the nonce, and appends the synthetic IV and the
// ciphertext to dst. An empty nonce is no component at all (deterministic
// SIV, RFC 5297 section 3); otherwise it is the last component before the
// plaintext, as RFC 5297 section 6 and RFC 8915 section 5.6 want. dst must
// not overlap plaintext. Seal panics with more than MaxAssociatedData
// components, a programming error.
func (a *AEAD) Seal(dst, nonce, plaintext []byte, ad ...[]byte) []byte {
	return a.seal(&a.mac.d0, MaxAssociatedData, dst, nonce, plaintext, ad)
}

// Open checks and decrypts ciphertext (synthetic IV then ciphertext) sealed
// with the same nonce and associated data, appends the plaintext to dst and
// returns it. On failure it returns ErrOpen and appends nothing; the tag is
// compared in constant time and no unauthenticated plaintext is left in
// dst's spare capacity. dst must not overlap ciphertext.
func (a *AEAD) Open(dst, nonce, ciphertext []byte, ad ...[]byte) ([]byte, error) {
	return a.open(&a.mac.d0, MaxAssociatedData, dst, nonce, ciphertext, ad)
}

func (a *AEAD) seal(d0 *[blockSize]byte, maxAD int, dst, nonce, plaintext []byte, ad [][]byte) []byte {
	if len(ad) > maxAD {
		panic("siv: too many associated data components")
	}
	sc := getScratch()
	defer putScratch(sc)
	var v [blockSize]byte
	a.s2v(sc, &v, d0, nonce, plaintext, ad)
	ret, out := grow(dst, TagSize+len(plaintext))
	copy(out, v[:])
	a.xorKeyStream(sc, out[TagSize:], plaintext, &v)
	return ret
}

func (a *AEAD) open(d0 *[blockSize]byte, maxAD int, dst, nonce, ciphertext []byte, ad [][]byte) ([]byte, error) {
	if len(ciphertext) < TagSize || len(ad) > maxAD {
		return nil, ErrOpen
	}
	sc := getScratch()
	defer putScratch(sc)
	var v, got [blockSize]byte
	copy(v[:], ciphertext)
	ret, out := grow(dst, len(ciphertext)-TagSize)
	a.xorKeyStream(sc, out, ciphertext[TagSize:], &v)
	a.s2v(sc, &got, d0, nonce, out, ad)
	if subtle.ConstantTimeCompare(got[:], v[:]) != 1 {
		clear(out)
		return nil, ErrOpen
	}
	return ret, nil
}

// Prefix is an AEAD whose leading associated data components are fixed and
// already absorbed into S2V, so that each message costs only the rest: an
// NTS cookie key authenticates its own key id with every cookie. Sealing
// or opening through a Prefix is the same as through its AEAD with the
// prefix components first. It is safe for concurrent use.
type Prefix struct {
	a *AEAD
	d [blockSize]byte
	n int
}

// Prefix absorbs the components ad, which must be at most MaxAssociatedData.
func (a *AEAD) Prefix(ad ...[]byte) *Prefix {
	if len(ad) > MaxAssociatedData {
		panic("siv: too many associated data components")
	}
	sc := getScratch()
	defer putScratch(sc)
	p := &Prefix{a: a, d: a.mac.d0, n: len(ad)}
	for _, s := range ad {
		a.absorb(sc, &p.d, s)
	}
	return p
}

// Seal is AEAD.Seal with the prefix's components before ad.
func (p *Prefix) Seal(dst, nonce, plaintext []byte, ad ...[]byte) []byte {
	return p.a.seal(&p.d, MaxAssociatedData-p.n, dst, nonce, plaintext, ad)
}

// Open is AEAD.Open with the prefix's components before ad.
func (p *Prefix) Open(dst, nonce, ciphertext []byte, ad ...[]byte) ([]byte, error) {
	return p.a.open(&p.d, MaxAssociatedData-p.n, dst, nonce, ciphertext, ad)
}

// grow extends dst by n bytes and returns the whole slice and the new part.
func grow(dst []byte, n int) (whole, tail []byte) {
	total := len(dst) + n
	if cap(dst) >= total {
		whole = dst[:total]
	} else {
		whole = make([]byte, total)
		copy(whole, dst)
	}
	return whole, whole[len(dst):]
}
