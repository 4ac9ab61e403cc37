package main

import (
	"encoding/binary"
	"io"
)

// Just enough HTTP/2 (RFC 9113) and HPACK (RFC 7541) to open streams
// that the server cannot answer: Go's own client would open the flow
// control window that the attack keeps shut.

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// HTTP/2 frame types, flags and settings used here.
const (
	h2FrameHeaders  = 0x1
	h2FrameSettings = 0x4
	h2FramePing     = 0x6
	h2FrameGoAway   = 0x7

	h2FlagAck        = 0x1
	h2FlagEndStream  = 0x1
	h2FlagEndHeaders = 0x4

	h2SettingEnablePush        = 0x2
	h2SettingInitialWindowSize = 0x4
)

// h2Frame appends one frame.
func h2Frame(b []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream&0x7fffffff)
	return append(b, payload...)
}

// h2Settings is a SETTINGS payload.
func h2Settings(kv ...uint32) []byte {
	var p []byte
	for i := 0; i+1 < len(kv); i += 2 {
		p = binary.BigEndian.AppendUint16(p, uint16(kv[i]))
		p = binary.BigEndian.AppendUint32(p, kv[i+1])
	}
	return p
}

// hpackGet encodes the header block of GET path with extra headers
// (lower-case names), every field a literal without indexing and without
// Huffman coding, so each block stands alone.
func hpackGet(authority, path string, extra ...string) []byte {
	b := []byte{0x82, 0x87} // :method GET, :scheme https (static table 2, 7)
	lit := func(nameIndex byte, name, value string) {
		b = append(b, nameIndex)
		if nameIndex == 0 {
			b = hpackString(b, name)
		}
		b = hpackString(b, value)
	}
	lit(0x04, "", path)      // :path (static table 4)
	lit(0x01, "", authority) // :authority (static table 1)
	for i := 0; i+1 < len(extra); i += 2 {
		lit(0x00, extra[i], extra[i+1])
	}
	return b
}

// hpackString appends a string literal: 7-bit prefix length, no Huffman.
func hpackString(b []byte, s string) []byte {
	n := len(s)
	if n < 127 {
		return append(append(b, byte(n)), s...)
	}
	b = append(b, 127)
	for n -= 127; n >= 128; n >>= 7 {
		b = append(b, byte(n%128+128))
	}
	return append(append(b, byte(n)), s...)
}

// h2ReadFrame reads one frame's header and payload.
func h2ReadFrame(r io.Reader, buf []byte) (typ, flags byte, stream uint32, payload []byte, err error) {
	var hdr [9]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return
	}
	n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	payload = buf[:n]
	_, err = io.ReadFull(r, payload)
	return hdr[3], hdr[4], binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff, payload, err
}
