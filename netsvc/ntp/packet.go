package ntp

import (
	"encoding/binary"
	"errors"
	"time"
)

// HeaderLen is the length of an NTP header without extension fields or MAC.
const HeaderLen = 48

// Protocol modes (RFC 5905 figure 10).
const (
	ModeSymmetricActive  = 1
	ModeSymmetricPassive = 2
	ModeClient           = 3
	ModeServer           = 4
	ModeBroadcast        = 5
	ModeControl          = 6
	ModePrivate          = 7
)

// Leap indicator values as carried in the LI field.
const (
	LeapNoWarning = 0
	LeapAddSecond = 1
	LeapDelSecond = 2
	LeapAlarm     = 3
)

// Sentinel errors returned by ParseRequest; the server counts drops by them.
var (
	ErrShort     = errors.New("ntp: packet shorter than 48 bytes")
	ErrVersion   = errors.New("ntp: unsupported version")
	ErrMode      = errors.New("ntp: not a client-mode request")
	ErrMalformed = errors.New("ntp: malformed extension fields or MAC")
)

// ntpEpochOffset is the number of seconds from 1900-01-01 (NTP era 0) to
// 1970-01-01 (Unix epoch).
const ntpEpochOffset = 2208988800

// Timestamp is an NTP 64-bit timestamp: seconds since 1900 in the high 32
// bits (modulo 2^32, i.e. within the current era) and a binary fraction in
// the low 32 bits.
type Timestamp uint64

// TimestampFromTime converts t to an NTP timestamp, rounding to the nearest
// fraction unit (about 233 ps). The zero time.Time maps to 0, which NTP
// reserves for "unknown".
func TimestampFromTime(t time.Time) Timestamp {
	if t.IsZero() {
		return 0
	}
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond())<<32 + 500_000_000) / 1_000_000_000
	return Timestamp(secs<<32 + frac)
}

// Time converts ts back to a time.Time, choosing the NTP era that puts the
// result within 68 years of pivot. 0 converts to the zero time.
func (ts Timestamp) Time(pivot time.Time) time.Time {
	if ts == 0 {
		return time.Time{}
	}
	p := uint32(pivot.Unix() + ntpEpochOffset)
	delta := int64(int32(uint32(ts>>32) - p))
	secs := pivot.Unix() + delta
	nanos := (uint64(uint32(ts))*1_000_000_000 + 1<<31) >> 32
	return time.Unix(secs, int64(nanos)).UTC()
}

// ShortFromDuration converts d to the NTP short format (16.16 seconds),
// rounding up: d is an error bound (root dispersion), and a published bound
// must never be smaller than the computed one. It saturates at the largest
// representable value; negative durations are 0.
func ShortFromDuration(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	if d >= 65536*time.Second {
		return 0xffffffff
	}
	// d < 2^46 ns, so the shift cannot overflow; rounding up the last
	// nanoseconds below 65536 s gives 2^32, which saturates too.
	return uint32(min((uint64(d)<<16+999_999_999)/1_000_000_000, 0xffffffff))
}

// Header is the fixed 48-byte part of an NTP packet.
type Header struct {
	Leap           uint8 // 2 bits
	Version        uint8 // 3 bits
	Mode           uint8 // 3 bits
	Stratum        uint8
	Poll           int8
	Precision      int8
	RootDelay      uint32 // NTP short format
	RootDispersion uint32 // NTP short format
	RefID          [4]byte
	RefTime        Timestamp
	OrigTime       Timestamp
	RxTime         Timestamp
	TxTime         Timestamp
}

// Unmarshal decodes the first 48 bytes of b into h. It only checks the
// length; ParseRequest applies the server's policy.
func (h *Header) Unmarshal(b []byte) error {
	if len(b) < HeaderLen {
		return ErrShort
	}
	h.Leap = b[0] >> 6
	h.Version = (b[0] >> 3) & 7
	h.Mode = b[0] & 7
	h.Stratum = b[1]
	h.Poll = int8(b[2])
	h.Precision = int8(b[3])
	h.RootDelay = binary.BigEndian.Uint32(b[4:])
	h.RootDispersion = binary.BigEndian.Uint32(b[8:])
	copy(h.RefID[:], b[12:16])
	h.RefTime = Timestamp(binary.BigEndian.Uint64(b[16:]))
	h.OrigTime = Timestamp(binary.BigEndian.Uint64(b[24:]))
	h.RxTime = Timestamp(binary.BigEndian.Uint64(b[32:]))
	h.TxTime = Timestamp(binary.BigEndian.Uint64(b[40:]))
	return nil
}

// MarshalTo encodes h into the first 48 bytes of b, which must be at least
// HeaderLen long. Fields wider than their wire format are truncated.
func (h *Header) MarshalTo(b []byte) {
	_ = b[HeaderLen-1]
	b[0] = h.Leap<<6 | (h.Version&7)<<3 | h.Mode&7
	b[1] = h.Stratum
	b[2] = byte(h.Poll)
	b[3] = byte(h.Precision)
	binary.BigEndian.PutUint32(b[4:], h.RootDelay)
	binary.BigEndian.PutUint32(b[8:], h.RootDispersion)
	copy(b[12:16], h.RefID[:])
	binary.BigEndian.PutUint64(b[16:], uint64(h.RefTime))
	binary.BigEndian.PutUint64(b[24:], uint64(h.OrigTime))
	binary.BigEndian.PutUint64(b[32:], uint64(h.RxTime))
	binary.BigEndian.PutUint64(b[40:], uint64(h.TxTime))
}

// ParseRequest decodes a packet received by a server and decides whether it
// deserves an answer: it must be at least 48 bytes, version 3 or 4, client
// mode, and anything after the header must be a well-formed sequence of
// extension fields (version 4 only) optionally followed by a MAC. It returns
// the header and one of the sentinel errors; it never allocates.
func ParseRequest(b []byte) (Header, error) {
	var h Header
	if err := h.Unmarshal(b); err != nil {
		return h, err
	}
	if h.Version != 3 && h.Version != 4 {
		return h, ErrVersion
	}
	if h.Mode != ModeClient {
		return h, ErrMode
	}
	if !validTrailer(b[HeaderLen:], h.Version) {
		return h, ErrMalformed
	}
	return h, nil
}

// MAC lengths accepted after the header or the last extension field: a
// crypto-NAK (key ID only), key ID + MD5, key ID + SHA-1.
const (
	macCryptoNAK = 4
	macMD5       = 20
	macSHA1      = 24
)

// validTrailer reports whether rest (the bytes after the header) is a valid
// sequence of extension fields (RFC 7822: 16-bit type, 16-bit length of at
// least 16 bytes, a multiple of 4, fitting the packet) optionally followed by
// a MAC. Version 3 packets carry no extension fields, only a MAC.
func validTrailer(rest []byte, version uint8) bool {
	for {
		switch len(rest) {
		case 0, macCryptoNAK, macMD5, macSHA1:
			// RFC 7822 section 7.5: with extension fields present a MAC
			// cannot be told from a field by length alone when it is 20 or
			// 24 bytes; a trailer of exactly a MAC's length is a MAC.
			return true
		}
		if version < 4 || len(rest) < 16 {
			return false
		}
		n := int(binary.BigEndian.Uint16(rest[2:]))
		if n < 16 || n%4 != 0 || n > len(rest) {
			return false
		}
		rest = rest[n:]
	}
}
