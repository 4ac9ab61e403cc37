package ntp

import (
	"encoding/binary"
	"errors"
)

// Extension field types of NTS for NTPv4 (RFC 8915 section 5.7, IANA "NTP
// Extension Field Types").
const (
	ExtUniqueIdentifier     = 0x0104
	ExtNTSCookie            = 0x0204
	ExtNTSCookiePlaceholder = 0x0304
	ExtNTSAuthenticator     = 0x0404
)

// ExtHeaderLen is the size of an extension field's type and length words.
const ExtHeaderLen = 4

// MaxExtFields bounds the extension fields the server parses in one
// request. An NTS client sends a Unique Identifier, a cookie, at most seven
// placeholders and the authenticator: ten. A request with more is dropped
// when NTS is enabled, so the per-packet work stays bounded.
const MaxExtFields = 16

// ErrTooManyFields is returned by ParseExtFields for a request with more
// than MaxExtFields extension fields.
var ErrTooManyFields = errors.New("ntp: too many extension fields")

// KissNTSN is the kiss code of an NTS negative acknowledgment (RFC 8915
// section 5.7): the cookie or the authenticator did not check out, and the
// client should get new cookies through NTS-KE.
var KissNTSN = [4]byte{'N', 'T', 'S', 'N'}

// ExtField is one extension field of a received packet (RFC 7822). Body
// aliases the packet.
type ExtField struct {
	Type   uint16
	Offset int    // offset of the field's type word in the packet
	Body   []byte // the value after the type and length words, padding included
}

// Len returns the field's length on the wire, header included.
func (f *ExtField) Len() int { return ExtHeaderLen + len(f.Body) }

// ParseExtFields appends the extension fields of pkt, a version 4 packet
// that ParseRequest accepted, to dst and returns it. The layout rules are
// ParseRequest's (RFC 7822: length at least 16, a multiple of 4, within the
// packet; a trailer of a MAC's length ends the fields), and at most
// MaxExtFields fields are accepted. It does not allocate when dst has room
// for MaxExtFields fields.
func ParseExtFields(pkt []byte, dst []ExtField) ([]ExtField, error) {
	if len(pkt) < HeaderLen {
		return dst, ErrShort
	}
	off := HeaderLen
	for {
		switch len(pkt) - off {
		case 0, macCryptoNAK, macMD5, macSHA1:
			return dst, nil
		}
		rest := pkt[off:]
		if len(rest) < 16 {
			return dst, ErrMalformed
		}
		n := int(binary.BigEndian.Uint16(rest[2:]))
		if n < 16 || n%4 != 0 || n > len(rest) {
			return dst, ErrMalformed
		}
		if len(dst) == MaxExtFields {
			return dst, ErrTooManyFields
		}
		dst = append(dst, ExtField{
			Type:   binary.BigEndian.Uint16(rest),
			Offset: off,
			Body:   rest[ExtHeaderLen:n],
		})
		off += n
	}
}

// AppendExtField appends an extension field of type typ carrying body,
// zero-padded to a multiple of 4 and to the 16-byte minimum, to b.
func AppendExtField(b []byte, typ uint16, body []byte) []byte {
	n := max((ExtHeaderLen+len(body)+3)&^3, 16)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, body...)
	for range n - ExtHeaderLen - len(body) {
		b = append(b, 0)
	}
	return b
}

// NTSProcessor authenticates NTS-protected requests (RFC 8915 section 5)
// and writes the protected part of their replies. Package nts implements
// it; the server holds it through Config.NTS and calls it from all workers
// at once, so it must be safe for concurrent use.
type NTSProcessor interface {
	// ProcessNTS authenticates req, a client request carrying an NTS
	// Cookie, whose extension fields are efs. reply holds the encoded
	// reply header (HeaderLen bytes, transmit timestamp set) and has room
	// up to cap(reply), which is len(req): ProcessNTS appends the echoed
	// Unique Identifier and the NTS Authenticator with fresh cookies
	// within that room and returns the extended slice. ok false means the
	// request is not authentic (unknown or broken cookie, bad
	// authenticator, missing fields): the server then sends an NTS NAK.
	ProcessNTS(req []byte, efs []ExtField, reply []byte) (out []byte, ok bool)
}

// hasNTSCookie reports whether efs carry an NTS Cookie, which makes the
// request an NTS request.
func hasNTSCookie(efs []ExtField) bool {
	for i := range efs {
		if efs[i].Type == ExtNTSCookie {
			return true
		}
	}
	return false
}

// appendNAK appends an NTS NAK for req to b: a kiss-o'-death NTSN that
// echoes the request's Unique Identifier field and nothing else (RFC 8915
// section 5.7). Without a Unique Identifier the client could not match the
// NAK, so ok is false and nothing should be sent.
func appendNAK(b []byte, req *Header, pkt []byte, efs []ExtField) (out []byte, ok bool) {
	for i := range efs {
		if efs[i].Type != ExtUniqueIdentifier {
			continue
		}
		h := KoDHeader(req, KissNTSN)
		b = b[:len(b)+HeaderLen]
		h.MarshalTo(b[len(b)-HeaderLen:])
		return append(b, pkt[efs[i].Offset:efs[i].Offset+efs[i].Len()]...), true
	}
	return b, false
}
