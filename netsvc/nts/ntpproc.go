package nts

import (
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"

	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts/siv"
)

// Limits of NTS-protected NTP (RFC 8915 section 5).
const (
	// MinUniqueIDLen is the least Unique Identifier body RFC 8915
	// section 5.3 allows.
	MinUniqueIDLen = 32
	// minNonceLen is the least authenticator nonce accepted: 16 bytes
	// is what every client uses with SIV and what section 5.6 asks for.
	minNonceLen = 16
	// replyNonceLen is the nonce the server puts in its authenticators.
	replyNonceLen = 16
	// MaxReplyCookies bounds the cookies in one reply: the cookie spent
	// plus seven placeholders refill a client's usual eight.
	MaxReplyCookies = 8
)

// cookieFieldLen is an NTS Cookie extension field holding one of our cookies.
const cookieFieldLen = ntp.ExtHeaderLen + CookieLen

// Processor authenticates NTS requests for the NTP server and seals its
// replies; it implements ntp.NTSProcessor. Get it from KEServer.Processor
// so that it shares the KE server's cookie keys.
type Processor struct {
	keys *keyRing
	rand io.Reader
	c    procCounters
}

var _ ntp.NTSProcessor = (*Processor)(nil)

type procCounters struct {
	ok, badCookie, badAuth, malformed, cookies atomic.Uint64
}

// ntsFields is what ProcessNTS needs from a request's extension fields.
type ntsFields struct {
	uid, cookie, auth *ntp.ExtField
	placeholders      int
}

// classify picks the NTS fields out of efs. The Unique Identifier, the
// cookie and the placeholders count only before the authenticator, where
// the authenticator covers them; each must appear once (placeholders
// excepted). Fields after the authenticator are ignored.
func classify(efs []ntp.ExtField) (ntsFields, bool) {
	var f ntsFields
	for i := range efs {
		ef := &efs[i]
		switch ef.Type {
		case ntp.ExtUniqueIdentifier:
			if f.uid != nil || len(ef.Body) < MinUniqueIDLen {
				return f, false
			}
			f.uid = ef
		case ntp.ExtNTSCookie:
			if f.cookie != nil {
				return f, false
			}
			f.cookie = ef
		case ntp.ExtNTSCookiePlaceholder:
			// RFC 8915 section 5.5: a placeholder is as long as the
			// cookie it asks for; others ask for nothing.
			if len(ef.Body) == CookieLen {
				f.placeholders++
			}
		case ntp.ExtNTSAuthenticator:
			f.auth = ef
			return f, f.uid != nil && f.cookie != nil
		}
	}
	return f, false
}

// parseAuthenticator splits an NTS Authenticator body into nonce and
// ciphertext (RFC 8915 section 5.6): lengths, then each padded to 4 bytes,
// then optional padding.
func parseAuthenticator(body []byte) (nonce, ciphertext []byte, ok bool) {
	if len(body) < 4 {
		return nil, nil, false
	}
	nl := int(binary.BigEndian.Uint16(body))
	cl := int(binary.BigEndian.Uint16(body[2:]))
	np, cp := pad4(nl), pad4(cl)
	if nl < minNonceLen || cl < siv.TagSize || 4+np+cp > len(body) {
		return nil, nil, false
	}
	return body[4 : 4+nl], body[4+np : 4+np+cl], true
}

func pad4(n int) int { return (n + 3) &^ 3 }

// validInner checks that the decrypted plaintext is a well-formed sequence
// of extension fields (it may be empty).
func validInner(p []byte) bool {
	for count := 0; len(p) > 0; count++ {
		if count == ntp.MaxExtFields || len(p) < 16 {
			return false
		}
		n := int(binary.BigEndian.Uint16(p[2:]))
		if n < 16 || n%4 != 0 || n > len(p) {
			return false
		}
		p = p[n:]
	}
	return true
}

// procScratch is the memory of one ProcessNTS call. It is pooled because
// the AEAD's plaintext and output buffers escape (they reach crypto/cipher
// through interfaces), so on the stack they would cost a heap allocation of
// a few kilobytes per request.
type procScratch struct {
	keys   Keys
	plain  [cookiePlainLen]byte
	inner  [ntp.MaxExtFields * 128]byte
	reply  [MaxReplyCookies * cookieFieldLen]byte
	nonces [(MaxReplyCookies + 1) * cookieNonceLen]byte
}

var scratchPool = sync.Pool{New: func() any { return new(procScratch) }}

// ProcessNTS implements ntp.NTSProcessor: it opens the request's cookie,
// checks the authenticator with the cookie's C2S key over the packet up to
// the authenticator, and appends the echoed Unique Identifier and an
// authenticator sealed with the S2C key that carries one fresh cookie for
// the one spent and one per placeholder, as many as fit in cap(reply).
func (p *Processor) ProcessNTS(req []byte, efs []ntp.ExtField, reply []byte) ([]byte, bool) {
	f, ok := classify(efs)
	if !ok {
		p.c.malformed.Add(1)
		return reply, false
	}
	nonce, ct, ok := parseAuthenticator(f.auth.Body)
	if !ok {
		p.c.malformed.Add(1)
		return reply, false
	}
	sc := scratchPool.Get().(*procScratch)
	defer func() {
		// Keys and plaintexts are secrets: nothing outlives the call.
		clear(sc.keys.C2S[:])
		clear(sc.keys.S2C[:])
		clear(sc.inner[:])
		clear(sc.reply[:])
		scratchPool.Put(sc)
	}()
	keys := &sc.keys
	if err := p.keys.openCookieInto(keys, f.cookie.Body, &sc.plain); err != nil {
		p.c.badCookie.Add(1)
		return reply, false
	}
	c2s, err := siv.New(keys.C2S[:])
	if err != nil {
		p.c.badAuth.Add(1)
		return reply, false
	}
	if len(ct)-siv.TagSize > len(sc.inner) {
		p.c.malformed.Add(1)
		return reply, false
	}
	inner, err := c2s.Open(sc.inner[:0], nonce, ct, req[:f.auth.Offset])
	if err != nil || !validInner(inner) {
		p.c.badAuth.Add(1)
		return reply, false
	}

	// Reply: header, Unique Identifier, authenticator with the cookies.
	// Every length here is fixed, so the count is fitted to the room
	// before anything is written.
	uid := req[f.uid.Offset : f.uid.Offset+f.uid.Len()]
	fixed := len(reply) + len(uid) + ntp.ExtHeaderLen + 4 + replyNonceLen + siv.TagSize
	n := min(1+f.placeholders, MaxReplyCookies, (cap(reply)-fixed)/cookieFieldLen)
	if n < 1 {
		// Not even one cookie fits: the request was too small to be
		// answered without amplification.
		p.c.malformed.Add(1)
		return reply, false
	}
	// All the nonces of this reply in one read: each read of the OS
	// random source is a system call.
	nonces := sc.nonces[:(n+1)*cookieNonceLen]
	if _, err := io.ReadFull(p.rand, nonces); err != nil {
		return reply, false
	}
	plain := sc.reply[:0]
	for i := range n {
		plain = binary.BigEndian.AppendUint16(plain, ntp.ExtNTSCookie)
		plain = binary.BigEndian.AppendUint16(plain, cookieFieldLen)
		plain = p.keys.appendCookieNonce(plain, keys, (*[cookieNonceLen]byte)(nonces[i*cookieNonceLen:]), &sc.plain)
	}
	s2c, err := siv.New(keys.S2C[:])
	if err != nil {
		return reply, false
	}
	rnonce := nonces[n*cookieNonceLen:]
	out := append(reply, uid...)
	authStart := len(out)
	ctLen := siv.TagSize + len(plain)
	out = binary.BigEndian.AppendUint16(out, ntp.ExtNTSAuthenticator)
	out = binary.BigEndian.AppendUint16(out, uint16(ntp.ExtHeaderLen+4+replyNonceLen+ctLen))
	out = binary.BigEndian.AppendUint16(out, replyNonceLen)
	out = binary.BigEndian.AppendUint16(out, uint16(ctLen))
	out = append(out, rnonce...)
	out = s2c.Seal(out, rnonce, plain, out[:authStart])
	p.c.ok.Add(1)
	p.c.cookies.Add(uint64(n))
	return out, true
}
