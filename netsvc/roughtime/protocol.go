package roughtime

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Version is a Roughtime protocol version as carried in VER.
type Version uint32

// The versions this server speaks. Google-Roughtime has no VER tag; 0 is
// the value the IETF drafts and their implementations use for it.
const (
	VersionGoogle  Version = 0
	VersionDraft11 Version = 0x8000000b
)

// String names the version.
func (v Version) String() string {
	switch v {
	case VersionGoogle:
		return "Google-Roughtime"
	case VersionDraft11:
		return "draft-ietf-ntp-roughtime-11"
	}
	return fmt.Sprintf("0x%08x", uint32(v))
}

// ietf reports whether v is an IETF draft (framing, 32-byte nonces and
// hashes, times in seconds).
func (v Version) ietf() bool { return v != VersionGoogle }

// hashSize is the length of NONC, of Merkle tree nodes and of ROOT.
func (v Version) hashSize() int {
	if v.ietf() {
		return 32
	}
	return 64
}

// unit is the resolution of MIDP, RADI, MINT and MAXT.
func (v Version) unit() time.Duration {
	if v.ietf() {
		return time.Second
	}
	return time.Microsecond
}

const (
	// MinRequestSize is the smallest request answered. Both versions
	// require it so that a reply, always smaller, cannot amplify a
	// spoofed request.
	MinRequestSize = 1024

	// ietfFrame starts every IETF-Roughtime packet, followed by the
	// message length as a little-endian uint32.
	ietfFrame = "ROUGHTIM"

	// Signature contexts, prefixed to the signed bytes.
	responseContext   = "RoughTime v1 response signature\x00"
	delegationContext = "RoughTime v1 delegation signature--\x00"
)

// Errors of ParseRequest; each is a reason to drop the request.
var (
	ErrShort       = errors.New("roughtime: request shorter than 1024 bytes")
	ErrUnsupported = errors.New("roughtime: no supported version offered")
)

// Request is a parsed client request.
type Request struct {
	// Version is the version the reply must use: draft 11 if an IETF
	// client offered it, Google-Roughtime for an unframed request.
	Version Version
	// Nonce is NONC: 32 bytes (IETF) or 64 (Google). It aliases the packet.
	Nonce []byte
	// SRV is the client's hash of the long-term key it expects, or nil.
	SRV []byte
	// Size is the request's length on the wire, the bound on the reply.
	Size int
}

// ParseRequest validates a request datagram. It returns an error wrapping
// ErrShort, ErrMalformed or ErrUnsupported for anything that must be
// dropped.
func ParseRequest(pkt []byte) (Request, error) {
	if len(pkt) < MinRequestSize {
		return Request{}, ErrShort
	}
	ver := VersionGoogle
	body := pkt
	// "ROUG" read as a tag count is far beyond what 1024+ bytes can hold,
	// so the frame cannot be mistaken for a Google message.
	if bytes.HasPrefix(pkt, []byte(ietfFrame)) {
		n := binary.LittleEndian.Uint32(pkt[8:12])
		body = pkt[12:]
		if uint64(n) != uint64(len(body)) {
			return Request{}, malformed("frame says %d bytes, %d follow", n, len(body))
		}
		ver = VersionDraft11
	}
	msg, err := ParseMessage(body)
	if err != nil {
		return Request{}, err
	}
	req := Request{Version: ver, Size: len(pkt)}
	if ver.ietf() {
		vers, ok := msg.Get(TagVER)
		if !ok || len(vers) == 0 {
			return Request{}, malformed("IETF request without VER")
		}
		found := false
		for i := 0; i < len(vers); i += 4 {
			if Version(binary.LittleEndian.Uint32(vers[i:])) == VersionDraft11 {
				found = true
			}
		}
		if !found {
			return Request{}, ErrUnsupported
		}
		if srv, ok := msg.Get(TagSRV); ok {
			if len(srv) != 32 {
				return Request{}, malformed("SRV of %d bytes", len(srv))
			}
			req.SRV = srv
		}
	}
	nonce, ok := msg.Get(TagNONC)
	if !ok || len(nonce) != ver.hashSize() {
		return Request{}, malformed("NONC of %d bytes for %v", len(nonce), ver)
	}
	req.Nonce = nonce
	return req, nil
}

// srvHash is the SRV value naming long-term key pub: the first 32 bytes
// of SHA-512(0xff || pub).
func srvHash(pub []byte) []byte {
	h := sha512.New()
	h.Write([]byte{0xff})
	h.Write(pub)
	return h.Sum(nil)[:32]
}

// quantise turns the node's time t and error bound into MIDP and RADI in
// v's unit. MIDP is t rounded to the nearest unit, and RADI covers both
// the bound and that rounding, rounded up, and is at least one unit: the
// true time stays inside MIDP±RADI whenever it is inside t±bound. ok is
// false if RADI does not fit in 32 bits (it is never clamped smaller) or
// t is before 1970.
func quantise(v Version, t time.Time, bound time.Duration) (midp uint64, radi uint32, ok bool) {
	if bound < 0 || t.Before(time.Unix(0, 0)) {
		return 0, 0, false
	}
	u := v.unit()
	// Whole units since the epoch, and the remainder, without the int64
	// nanosecond overflow of UnixNano.
	secs, nsec := t.Unix(), int64(t.Nanosecond())
	var whole uint64
	var rem time.Duration
	if u == time.Second {
		whole, rem = uint64(secs), time.Duration(nsec)
	} else {
		whole = uint64(secs)*uint64(time.Second/u) + uint64(nsec/int64(u))
		rem = time.Duration(nsec % int64(u))
	}
	midp, err := whole, rem
	if 2*rem >= u {
		midp, err = whole+1, u-rem
	}
	cover := bound + err
	if cover < bound { // overflow of the sum
		return 0, 0, false
	}
	units := cover / u
	if cover%u != 0 {
		units++
	}
	if units < 1 {
		units = 1
	}
	if units > math.MaxUint32 {
		return 0, 0, false
	}
	return midp, uint32(units), true
}

// timeUnits is t in v's unit, rounded down (for MINT and MAXT).
func timeUnits(v Version, t time.Time) uint64 {
	if v.ietf() {
		return uint64(t.Unix())
	}
	return uint64(t.UnixMicro())
}

func le32(x uint32) []byte { return binary.LittleEndian.AppendUint32(nil, x) }
func le64(x uint64) []byte { return binary.LittleEndian.AppendUint64(nil, x) }
