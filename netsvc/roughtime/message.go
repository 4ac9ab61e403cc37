// Package roughtime serves the Roughtime protocol: Google-Roughtime (the
// original protocol) and draft-ietf-ntp-roughtime-11. Replies are signed
// by a short-lived online key that a long-term Ed25519 key certifies
// (CERT/DELE), requests arriving together are answered with one signature
// over a Merkle tree of their nonces, the radius is never smaller than the
// node's error bound, no reply is larger than its request, and nothing is
// served while the clock is unsynchronized. See docs/ROUGHTIME.md.
package roughtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Tag is a Roughtime tag: four bytes read as a little-endian uint32, which
// is also the order tags must appear in.
type Tag uint32

// MakeTag returns the tag spelled by s, which must be four bytes long.
func MakeTag(s string) Tag {
	if len(s) != 4 {
		panic("roughtime: tag " + fmt.Sprintf("%q", s) + " is not four bytes")
	}
	return Tag(binary.LittleEndian.Uint32([]byte(s)))
}

// String returns the tag's four bytes, with non-printing bytes escaped.
func (t Tag) String() string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(t))
	return fmt.Sprintf("%q", b[:])
}

// The tags this package reads or writes.
var (
	TagSIG  = MakeTag("SIG\x00")
	TagVER  = MakeTag("VER\x00")
	TagSRV  = MakeTag("SRV\x00")
	TagNONC = MakeTag("NONC")
	TagDELE = MakeTag("DELE")
	TagPATH = MakeTag("PATH")
	TagRADI = MakeTag("RADI")
	TagPUBK = MakeTag("PUBK")
	TagMIDP = MakeTag("MIDP")
	TagSREP = MakeTag("SREP")
	TagMINT = MakeTag("MINT")
	TagROOT = MakeTag("ROOT")
	TagCERT = MakeTag("CERT")
	TagMAXT = MakeTag("MAXT")
	TagINDX = MakeTag("INDX")
	TagZZZZ = MakeTag("ZZZZ")
	TagPAD  = MakeTag("PAD\xff")
)

// Field is one tag and its value.
type Field struct {
	Tag   Tag
	Value []byte
}

// Message is a Roughtime message: fields in strictly increasing tag order,
// each value a multiple of four bytes. ParseMessage and NewMessage only
// return such messages.
type Message []Field

// ErrMalformed is wrapped by every refusal of malformed wire data.
var ErrMalformed = errors.New("roughtime: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// NewMessage sorts fields into a Message. Duplicate tags, or a value whose
// length is not a multiple of four, are refused: they cannot be encoded.
func NewMessage(fields ...Field) (Message, error) {
	m := slices.Clone(Message(fields))
	slices.SortFunc(m, func(a, b Field) int {
		switch {
		case a.Tag < b.Tag:
			return -1
		case a.Tag > b.Tag:
			return 1
		}
		return 0
	})
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m Message) check() error {
	for i, f := range m {
		if i > 0 && m[i-1].Tag >= f.Tag {
			return fmt.Errorf("roughtime: tags %v and %v out of order or repeated", m[i-1].Tag, f.Tag)
		}
		if len(f.Value)%4 != 0 {
			return fmt.Errorf("roughtime: value of %v is %d bytes, not a multiple of 4", f.Tag, len(f.Value))
		}
	}
	return nil
}

// Get returns the value of tag t.
func (m Message) Get(t Tag) ([]byte, bool) {
	i, ok := slices.BinarySearchFunc(m, t, func(f Field, t Tag) int {
		switch {
		case f.Tag < t:
			return -1
		case f.Tag > t:
			return 1
		}
		return 0
	})
	if !ok {
		return nil, false
	}
	return m[i].Value, true
}

// Size returns the length of m's encoding.
func (m Message) Size() int {
	if len(m) == 0 {
		return 4
	}
	n := 8 * len(m) // count, offsets (one fewer than tags), tags
	for _, f := range m {
		n += len(f.Value)
	}
	return n
}

// Encode returns m's wire encoding. It fails if m is not sorted or has a
// value of the wrong length (only a Message built by hand can be).
func (m Message) Encode() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	size := m.Size()
	if uint64(size) > 1<<32-1 {
		return nil, errors.New("roughtime: message too large")
	}
	out := make([]byte, 4, size)
	binary.LittleEndian.PutUint32(out, uint32(len(m)))
	off := 0
	for i, f := range m {
		if i > 0 {
			out = binary.LittleEndian.AppendUint32(out, uint32(off))
		}
		off += len(f.Value)
	}
	for _, f := range m {
		out = binary.LittleEndian.AppendUint32(out, uint32(f.Tag))
	}
	for _, f := range m {
		out = append(out, f.Value...)
	}
	return out, nil
}

// ParseMessage decodes b strictly: its length is a multiple of four and at
// least the header; tags strictly increase; offsets are multiples of four,
// do not decrease and stay within the payload; nothing follows the last
// value but what the last offset implies. An empty message is exactly
// four bytes. Values alias b. Every accepted b is the Encode of the
// returned Message, byte for byte.
func ParseMessage(b []byte) (Message, error) {
	if len(b) < 4 || len(b)%4 != 0 {
		return nil, malformed("length %d", len(b))
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if n == 0 {
		if len(b) != 4 {
			return nil, malformed("empty message with %d trailing bytes", len(b)-4)
		}
		return Message{}, nil
	}
	// Checked before any allocation, so a huge count costs nothing.
	header := 8 * n
	if header > uint64(len(b)) {
		return nil, malformed("%d tags need a %d-byte header, have %d bytes", n, header, len(b))
	}
	offsets := b[4 : 4*n]
	tags := b[4*n : header]
	payload := b[header:]
	m := make(Message, n)
	start := uint64(0)
	for i := range n {
		end := uint64(len(payload))
		if i+1 < n {
			end = uint64(binary.LittleEndian.Uint32(offsets[4*i:]))
		}
		if end%4 != 0 {
			return nil, malformed("offset %d is not a multiple of 4", end)
		}
		if end < start || end > uint64(len(payload)) {
			return nil, malformed("offset %d outside [%d, %d]", end, start, len(payload))
		}
		t := Tag(binary.LittleEndian.Uint32(tags[4*i:]))
		if i > 0 && m[i-1].Tag >= t {
			return nil, malformed("tag %v after %v", t, m[i-1].Tag)
		}
		m[i] = Field{Tag: t, Value: payload[start:end:end]}
		start = end
	}
	return m, nil
}
