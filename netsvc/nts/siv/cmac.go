package siv

import (
	"crypto/cipher"
	"encoding/binary"
)

// blockSize is the AES block size, which is also the CMAC and SIV tag size.
const blockSize = 16

// dbl multiplies b by x in GF(2^128) with the polynomial x^128 + x^7 + x^2
// + x + 1 (RFC 4493 section 2.3, RFC 5297 section 2.3). The reduction is
// applied through a mask, not a branch, so the timing does not depend on the
// secret top bit.
func dbl(b *[blockSize]byte) {
	carry := b[0] >> 7
	for i := 0; i < blockSize-1; i++ {
		b[i] = b[i]<<1 | b[i+1]>>7
	}
	b[blockSize-1] = b[blockSize-1]<<1 ^ (0x87 & -carry)
}

// cmac is AES-CMAC (RFC 4493) under one key: the block cipher and the two
// subkeys derived from it.
type cmac struct {
	b      cipher.Block
	k1, k2 [blockSize]byte
	// d0 is CMAC(K, <zero>), the value every S2V starts from.
	d0 [blockSize]byte
}

func newCMAC(b cipher.Block) *cmac {
	c := new(cmac)
	c.init(b)
	return c
}

// init keys c with b. L = AES(K, 0) is computed in c.k1 itself: a stack
// array handed to the block's Encrypt, an interface method, would escape
// and cost an allocation.
func (c *cmac) init(b cipher.Block) {
	c.b = b
	c.k1 = [blockSize]byte{}
	b.Encrypt(c.k1[:], c.k1[:])
	dbl(&c.k1)
	c.k2 = c.k1
	dbl(&c.k2)
	// The CMAC of one complete block M is AES(K, M xor K1); M is zero.
	c.d0 = c.k1
	b.Encrypt(c.d0[:], c.d0[:])
}

// cmacState is one running CMAC computation. It keeps the last block back
// until finish, because the last block is treated differently (xored with
// K1 when complete, padded and xored with K2 when not).
type cmacState struct {
	c   *cmac
	x   [blockSize]byte // chaining value
	buf [blockSize]byte // pending input, not yet encrypted
	n   int             // bytes in buf
}

func (s *cmacState) reset(c *cmac) {
	*s = cmacState{c: c}
}

// write absorbs p. Whole blocks are absorbed straight from p while more
// input follows them; only the last block (complete or not) is kept back.
func (s *cmacState) write(p []byte) {
	for len(p) > 0 {
		if s.n == blockSize {
			// More input follows, so the buffered block is not the last.
			xor16(&s.x, &s.x, &s.buf)
			s.c.b.Encrypt(s.x[:], s.x[:])
			s.n = 0
		}
		if s.n == 0 {
			for len(p) > blockSize {
				xor16(&s.x, &s.x, (*[blockSize]byte)(p))
				s.c.b.Encrypt(s.x[:], s.x[:])
				p = p[blockSize:]
			}
		}
		k := copy(s.buf[s.n:], p)
		s.n += k
		p = p[k:]
	}
}

// xor16 sets dst = a ^ b for one block, in two word operations: blocks
// are xored several times per message, and crypto/subtle.XORBytes's
// general-length path costs more than the work at this size.
func xor16(dst, a, b *[blockSize]byte) {
	binary.LittleEndian.PutUint64(dst[:8], binary.LittleEndian.Uint64(a[:8])^binary.LittleEndian.Uint64(b[:8]))
	binary.LittleEndian.PutUint64(dst[8:], binary.LittleEndian.Uint64(a[8:])^binary.LittleEndian.Uint64(b[8:]))
}

// finish writes the tag into out. The last block is completed in buf and
// encrypted in place, so that out and the state may live anywhere: only
// s's own arrays reach the block cipher.
func (s *cmacState) finish(out *[blockSize]byte) {
	if s.n == blockSize {
		xor16(&s.buf, &s.buf, &s.c.k1)
	} else {
		clear(s.buf[s.n:])
		s.buf[s.n] = 0x80
		xor16(&s.buf, &s.buf, &s.c.k2)
	}
	xor16(&s.x, &s.x, &s.buf)
	s.c.b.Encrypt(s.x[:], s.x[:])
	*out = s.x
}

// sum computes the CMAC of the concatenation of parts into out, using st
// as its running state.
func (c *cmac) sum(st *cmacState, out *[blockSize]byte, parts ...[]byte) {
	st.reset(c)
	for _, p := range parts {
		st.write(p)
	}
	st.finish(out)
}
