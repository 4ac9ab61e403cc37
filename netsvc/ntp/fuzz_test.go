package ntp

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseRequest checks that the parser never panics, that an accepted
// request's header survives an encode/decode round trip byte for byte, that
// the verdict depends only on the documented fields, and that the reply
// built from any accepted request is exactly 48 bytes and echoes nothing
// but the request's transmit timestamp and poll.
func FuzzParseRequest(f *testing.F) {
	f.Add(request(4, ModeClient, 0x1122334455667788, nil))
	f.Add(request(3, ModeClient, 1, nil))
	f.Add(request(4, ModeControl, 1, nil))
	f.Add(request(4, ModePrivate, 1, nil))
	f.Add(request(4, ModeClient, 1, extField(0x0104, 36)))
	f.Add(request(4, ModeClient, 1, append(extField(0x0204, 104), make([]byte, macMD5)...)))
	f.Add(request(3, ModeClient, 1, make([]byte, macSHA1)))
	f.Add([]byte{0xe3})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		h, err := ParseRequest(pkt)
		if len(pkt) < HeaderLen {
			if !errors.Is(err, ErrShort) {
				t.Fatalf("%d-byte packet: error %v, want ErrShort", len(pkt), err)
			}
			return
		}
		var again [HeaderLen]byte
		h.MarshalTo(again[:])
		if !bytes.Equal(again[:], pkt[:HeaderLen]) {
			t.Fatalf("round trip changed the header:\n got %x\nwant %x", again, pkt[:HeaderLen])
		}
		if err != nil {
			return
		}
		if h.Mode != ModeClient || (h.Version != 3 && h.Version != 4) {
			t.Fatalf("accepted mode %d version %d", h.Mode, h.Version)
		}
		st := Status{Synchronized: true, RefID: [4]byte{'G', 'P', 'S'}}
		r := ServerHeader(&h, &st, -20, 5, 6)
		var out [HeaderLen]byte
		r.MarshalTo(out[:])
		var back Header
		if err := back.Unmarshal(out[:]); err != nil || back != r {
			t.Fatalf("reply round trip: %+v, %v; want %+v", back, err, r)
		}
		if back.OrigTime != h.TxTime || back.Version != h.Version || back.Mode != ModeServer {
			t.Fatalf("reply %+v does not answer request %+v", back, h)
		}
	})
}
