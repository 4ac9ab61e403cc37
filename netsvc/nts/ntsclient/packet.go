package ntsclient

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts/siv"
)

// Sizes of the client's protocol elements.
const (
	// UniqueIDLen is the Unique Identifier the client sends (RFC 8915
	// section 5.3 asks for at least 32 bytes).
	UniqueIDLen = 32
	// NonceLen is the authenticator nonce the client sends, and the
	// least it accepts in a reply.
	NonceLen = 16
)

// Errors of VerifyReply. A reply failing any of them is not from the
// server, or not for this request, and is dropped.
var (
	// ErrNotReply: not a well-formed NTPv4 server reply to the request
	// (mode, version, origin timestamp, extension field layout).
	ErrNotReply = errors.New("ntsclient: not a reply to the request")
	// ErrUniqueID: the Unique Identifier is missing or not the one sent.
	ErrUniqueID = errors.New("ntsclient: unique identifier mismatch")
	// ErrAuthentication: the NTS Authenticator is missing, malformed or
	// does not verify under the S2C key.
	ErrAuthentication = errors.New("ntsclient: reply authentication failed")
	// ErrNAK: the server answered with an NTS NAK (kiss code NTSN) that
	// echoes the Unique Identifier: the cookie or the request's
	// authenticator was refused, and the client must redo NTS-KE.
	ErrNAK = errors.New("ntsclient: NTS NAK")
)

// Request is one NTS-protected NTPv4 client request.
type Request struct {
	// Packet is the datagram to send.
	Packet []byte
	// UniqueID and Tx are what the reply must echo.
	UniqueID []byte
	Tx       ntp.Timestamp
}

// BuildRequest builds a client request that spends cookie, asks for
// placeholders more cookies of its length, and is sealed with c2s. uid
// (UniqueIDLen bytes), tx (the transmit timestamp, random for privacy)
// and nonce (NonceLen bytes) are inputs so that the caller chooses the
// entropy.
func BuildRequest(c2s *siv.AEAD, cookie []byte, placeholders int, uid []byte, tx ntp.Timestamp, nonce []byte) Request {
	pkt := make([]byte, ntp.HeaderLen, ntp.HeaderLen+(2+placeholders)*(ntp.ExtHeaderLen+len(cookie))+128)
	h := ntp.Header{Leap: ntp.LeapAlarm, Version: 4, Mode: ntp.ModeClient, TxTime: tx}
	h.MarshalTo(pkt)
	pkt = ntp.AppendExtField(pkt, ntp.ExtUniqueIdentifier, uid)
	pkt = ntp.AppendExtField(pkt, ntp.ExtNTSCookie, cookie)
	zero := make([]byte, len(cookie))
	for range placeholders {
		pkt = ntp.AppendExtField(pkt, ntp.ExtNTSCookiePlaceholder, zero)
	}
	ct := c2s.Seal(nil, nonce, nil, pkt)
	body := binary.BigEndian.AppendUint16(make([]byte, 0, 4+len(nonce)+len(ct)+3), uint16(len(nonce)))
	body = binary.BigEndian.AppendUint16(body, uint16(len(ct)))
	body = append(body, nonce...)
	body = append(body, make([]byte, pad4(len(nonce))-len(nonce))...)
	body = append(body, ct...)
	pkt = ntp.AppendExtField(pkt, ntp.ExtNTSAuthenticator, body)
	return Request{Packet: pkt, UniqueID: uid, Tx: tx}
}

// Reply is a verified server reply.
type Reply struct {
	Header ntp.Header
	// Cookies are the fresh cookies from the encrypted fields, copied
	// out of the packet.
	Cookies [][]byte
}

// VerifyReply checks pkt as the reply to req: an NTPv4 server-mode packet
// whose origin timestamp is req.Tx, with an NTS Authenticator that
// verifies under s2c over everything before it, req.UniqueID's Unique
// Identifier (once) among the fields it covers; the decrypted fields must
// be well formed, and their NTS Cookies are returned (at most MaxCookies,
// each at most MaxCookieLen bytes). Fields after the authenticator are
// not covered by it and are ignored. An NTS NAK echoing the identifier
// returns ErrNAK.
func VerifyReply(pkt []byte, req *Request, s2c *siv.AEAD) (*Reply, error) {
	var h ntp.Header
	if err := h.Unmarshal(pkt); err != nil {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotReply, len(pkt))
	}
	if h.Mode != ntp.ModeServer || h.Version != 4 || h.OrigTime != req.Tx {
		return nil, fmt.Errorf("%w: mode %d version %d", ErrNotReply, h.Mode, h.Version)
	}
	var fields [ntp.MaxExtFields]ntp.ExtField
	efs, err := ntp.ParseExtFields(pkt, fields[:0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReply, err)
	}
	// The fields the authenticator covers are those before it; the
	// identifier must be among them, once.
	covered := efs
	var auth *ntp.ExtField
	for i := range efs {
		if efs[i].Type == ntp.ExtNTSAuthenticator {
			covered, auth = efs[:i], &efs[i]
			break
		}
	}
	uids := 0
	for _, ef := range covered {
		if ef.Type != ntp.ExtUniqueIdentifier {
			continue
		}
		if uids++; !bytes.Equal(trimUID(ef.Body, len(req.UniqueID)), req.UniqueID) {
			return nil, ErrUniqueID
		}
	}
	if uids != 1 {
		return nil, ErrUniqueID
	}
	if h.Stratum == 0 && h.RefID == ntp.KissNTSN {
		// Unauthenticated by design (RFC 8915 section 5.7); the echoed
		// identifier is what ties it to our request.
		return nil, ErrNAK
	}
	if auth == nil {
		return nil, fmt.Errorf("%w: no authenticator", ErrAuthentication)
	}
	nonce, ct, ok := parseAuthenticator(auth.Body)
	if !ok {
		return nil, fmt.Errorf("%w: malformed authenticator", ErrAuthentication)
	}
	plain, err := s2c.Open(nil, nonce, ct, pkt[:auth.Offset])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuthentication, err)
	}
	r := &Reply{Header: h}
	for p := plain; len(p) > 0; {
		if len(p) < ntp.ExtHeaderLen {
			return nil, fmt.Errorf("%w: encrypted fields malformed", ErrAuthentication)
		}
		typ := binary.BigEndian.Uint16(p)
		n := int(binary.BigEndian.Uint16(p[2:]))
		if n < ntp.ExtHeaderLen || n%4 != 0 || n > len(p) {
			return nil, fmt.Errorf("%w: encrypted fields malformed", ErrAuthentication)
		}
		body := p[ntp.ExtHeaderLen:n]
		p = p[n:]
		if typ == ntp.ExtNTSCookie && len(body) > 0 && len(body) <= MaxCookieLen && len(r.Cookies) < MaxCookies {
			r.Cookies = append(r.Cookies, body)
		}
	}
	return r, nil
}

// trimUID returns the first n bytes of a Unique Identifier body, which
// AppendExtField may have padded; a shorter body is returned whole.
func trimUID(body []byte, n int) []byte {
	if len(body) < n {
		return body
	}
	// Padding past the identifier must be zero: a body that carries more
	// than the identifier is not an echo of it.
	for _, c := range body[n:] {
		if c != 0 {
			return body
		}
	}
	return body[:n]
}

// parseAuthenticator splits an NTS Authenticator body into nonce and
// ciphertext (RFC 8915 section 5.6): lengths, then each padded to 4
// bytes, then optional padding.
func parseAuthenticator(body []byte) (nonce, ciphertext []byte, ok bool) {
	if len(body) < 4 {
		return nil, nil, false
	}
	nl := int(binary.BigEndian.Uint16(body))
	cl := int(binary.BigEndian.Uint16(body[2:]))
	if nl < NonceLen || cl < siv.TagSize || 4+pad4(nl)+pad4(cl) > len(body) {
		return nil, nil, false
	}
	return body[4 : 4+nl], body[4+pad4(nl) : 4+pad4(nl)+cl], true
}

func pad4(n int) int { return (n + 3) &^ 3 }

// shortDuration converts an NTP short-format value (16.16 seconds) to a
// duration, rounding up: root delay and dispersion are error bounds.
func shortDuration(v uint32) time.Duration {
	return time.Duration((uint64(v)*uint64(time.Second) + 0xffff) >> 16)
}
