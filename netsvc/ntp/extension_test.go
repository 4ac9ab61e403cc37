package ntp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseExtFields(t *testing.T) {
	uid := extField(ExtUniqueIdentifier, 36)
	cookie := extField(ExtNTSCookie, 108)
	auth := extField(ExtNTSAuthenticator, 40)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name    string
		trailer []byte
		types   []uint16
		err     error
	}{
		{"none", nil, nil, nil},
		{"NTS request", cat(uid, cookie, auth), []uint16{ExtUniqueIdentifier, ExtNTSCookie, ExtNTSAuthenticator}, nil},
		{"field then MD5 MAC", cat(uid, make([]byte, macMD5)), []uint16{ExtUniqueIdentifier}, nil},
		{"minimal field", extField(0x0200, 16), []uint16{0x0200}, nil},
		{"length not a multiple of 4", extField(1, 18), nil, ErrMalformed},
		{"length below 16", cat(extField(1, 12), make([]byte, 16)), nil, ErrMalformed},
		{"length past the end", cat(extField(1, 40)[:36]), nil, ErrMalformed},
		{"trailing garbage", cat(uid, make([]byte, 8)), nil, ErrMalformed},
		{"exactly the limit", bytes.Repeat(extField(2, 16), MaxExtFields), nil, nil},
		{"one over the limit", bytes.Repeat(extField(2, 16), MaxExtFields+1), nil, ErrTooManyFields},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := request(4, ModeClient, 1, tc.trailer)
			var buf [MaxExtFields]ExtField
			efs, err := ParseExtFields(pkt, buf[:0])
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err != nil || tc.types == nil {
				return
			}
			if len(efs) != len(tc.types) {
				t.Fatalf("%d fields, want %d", len(efs), len(tc.types))
			}
			for i, ef := range efs {
				if ef.Type != tc.types[i] {
					t.Errorf("field %d type %#x, want %#x", i, ef.Type, tc.types[i])
				}
				if got := pkt[ef.Offset : ef.Offset+ef.Len()]; binary.BigEndian.Uint16(got) != ef.Type ||
					int(binary.BigEndian.Uint16(got[2:])) != ef.Len() {
					t.Errorf("field %d: offset %d does not point at its header", i, ef.Offset)
				}
			}
		})
	}
	if _, err := ParseExtFields(make([]byte, 10), nil); !errors.Is(err, ErrShort) {
		t.Errorf("short packet: %v", err)
	}
}

func TestAppendExtField(t *testing.T) {
	for _, tc := range []struct{ body, want int }{{0, 16}, {1, 16}, {12, 16}, {13, 20}, {32, 36}, {104, 108}} {
		b := AppendExtField([]byte{9}, 0x0104, bytes.Repeat([]byte{1}, tc.body))
		f := b[1:]
		if len(f) != tc.want || int(binary.BigEndian.Uint16(f[2:])) != tc.want || binary.BigEndian.Uint16(f) != 0x0104 {
			t.Errorf("body %d: field %x, want length %d", tc.body, f, tc.want)
		}
		if !bytes.Equal(f[4+tc.body:], make([]byte, tc.want-4-tc.body)) {
			t.Errorf("body %d: padding not zero", tc.body)
		}
	}
}

// FuzzParseExtFields checks that the field parser never panics, agrees
// with ParseRequest's layout verdict below the count limit, and returns
// fields that tile the packet after the header.
func FuzzParseExtFields(f *testing.F) {
	f.Add(request(4, ModeClient, 1, bytes.Join([][]byte{extField(ExtUniqueIdentifier, 36), extField(ExtNTSCookie, 108), extField(ExtNTSAuthenticator, 40)}, nil)))
	f.Add(request(4, ModeClient, 1, append(extField(0x0204, 104), make([]byte, macMD5)...)))
	f.Add(request(4, ModeClient, 1, bytes.Repeat(extField(2, 16), MaxExtFields+1)))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		efs, err := ParseExtFields(pkt, nil)
		if len(pkt) < HeaderLen {
			if !errors.Is(err, ErrShort) {
				t.Fatalf("short packet: %v", err)
			}
			return
		}
		// Past the limit the parser stops without reading the rest, so
		// the layout verdicts agree only below it.
		if errors.Is(err, ErrTooManyFields) {
			if len(efs) != MaxExtFields {
				t.Fatalf("too many fields after %d", len(efs))
			}
			return
		}
		if layoutOK := validTrailer(pkt[HeaderLen:], 4); (err == nil) != layoutOK {
			t.Fatalf("ParseExtFields %v, validTrailer %v", err, layoutOK)
		}
		if err != nil {
			return
		}
		off := HeaderLen
		for _, ef := range efs {
			if ef.Offset != off || ef.Len() < 16 || ef.Len()%4 != 0 {
				t.Fatalf("field %+v at %d", ef, off)
			}
			off += ef.Len()
		}
		switch len(pkt) - off {
		case 0, macCryptoNAK, macMD5, macSHA1:
		default:
			t.Fatalf("%d bytes left after the fields", len(pkt)-off)
		}
	})
}

// fakeNTS accepts requests whose cookie body starts with "good" and
// answers with the identifier and a fixed field; it records what it saw.
type fakeNTS struct {
	calls atomic.Int64
	grow  atomic.Bool // write past the room it is given
}

func (f *fakeNTS) ProcessNTS(req []byte, efs []ExtField, reply []byte) ([]byte, bool) {
	f.calls.Add(1)
	var uid, cookie *ExtField
	for i := range efs {
		switch efs[i].Type {
		case ExtUniqueIdentifier:
			uid = &efs[i]
		case ExtNTSCookie:
			cookie = &efs[i]
		}
	}
	if uid == nil || !bytes.HasPrefix(cookie.Body, []byte("good")) {
		return reply, false
	}
	reply = append(reply, req[uid.Offset:uid.Offset+uid.Len()]...)
	if f.grow.Load() {
		return append(reply, make([]byte, len(req))...), true
	}
	return AppendExtField(reply, ExtNTSAuthenticator, []byte("sealed")), true
}

func ntsTestRequest(cookie string, withUID bool, tx Timestamp) []byte {
	var trailer []byte
	if withUID {
		trailer = AppendExtField(trailer, ExtUniqueIdentifier, bytes.Repeat([]byte{0xab}, 32))
	}
	trailer = AppendExtField(trailer, ExtNTSCookie, append([]byte(cookie), make([]byte, 100)...))
	trailer = AppendExtField(trailer, ExtNTSAuthenticator, make([]byte, 36))
	return request(4, ModeClient, tx, trailer)
}

// TestServerNTS runs the server with a fake NTS processor: cookie-bearing
// requests go to it, its failures become NTS NAKs, and everything else is
// plain NTP as before.
func TestServerNTS(t *testing.T) {
	fake := &fakeNTS{}
	s := startServer(t, Config{Workers: 1, NTS: fake}, offsetClock{}, lockedStatus)
	c := dial(t, s)
	uidField := AppendExtField(nil, ExtUniqueIdentifier, bytes.Repeat([]byte{0xab}, 32))

	good := ntsTestRequest("good", true, 0x1111)
	got := exchange(t, c, good, 2*time.Second)
	if len(got) != HeaderLen+len(uidField)+16 || !bytes.Equal(got[HeaderLen:HeaderLen+len(uidField)], uidField) {
		t.Fatalf("NTS reply %x", got)
	}
	h := replyHeader(got)
	if h.Stratum != 1 || h.OrigTime != 0x1111 || h.TxTime == 0 || h.RxTime == 0 {
		t.Fatalf("NTS reply header %+v", h)
	}

	bad := ntsTestRequest("evil", true, 0x2222)
	got = exchange(t, c, bad, 2*time.Second)
	h = replyHeader(got)
	if h.RefID != KissNTSN || h.Stratum != 0 || h.Leap != LeapAlarm || h.TxTime != 0x2222 || h.RxTime != 0x2222 ||
		!bytes.Equal(got[HeaderLen:], uidField) {
		t.Fatalf("NAK %x (%+v)", got, h)
	}

	if got := exchange(t, c, ntsTestRequest("evil", false, 0x3333), 300*time.Millisecond); got != nil {
		t.Fatalf("NAK without identifier sent: %x", got)
	}
	if got := exchange(t, c, request(4, ModeClient, 0x4444, bytes.Repeat(extField(2, 16), MaxExtFields+1)), 300*time.Millisecond); got != nil {
		t.Fatalf("request with too many fields answered: %x", got)
	}
	// No cookie: plain NTP, the processor is not asked.
	calls := fake.calls.Load()
	got = exchange(t, c, request(4, ModeClient, 0x5555, uidField), 2*time.Second)
	if len(got) != HeaderLen || fake.calls.Load() != calls {
		t.Fatalf("cookie-less request: %d-byte reply, processor called", len(got))
	}
	// Version 3 requests never reach NTS.
	got = exchange(t, c, request(3, ModeClient, 0x6666, nil), 2*time.Second)
	if len(got) != HeaderLen {
		t.Fatalf("v3 request: %d-byte reply", len(got))
	}

	// A processor that overruns its room is not trusted: NAK.
	fake.grow.Store(true)
	got = exchange(t, c, ntsTestRequest("good", true, 0x7777), 2*time.Second)
	if h := replyHeader(got); h.RefID != KissNTSN || len(got) > len(good) {
		t.Fatalf("overrunning processor: reply %x", got)
	}

	want := func(st Stats) bool { return st.NTSReplies == 1 && st.NTSNAKs == 2 && st.Drops[DropMalformed] == 2 }
	if st := eventually(s, want); !want(st) {
		t.Errorf("stats %+v", st)
	}
}

func replyHeader(b []byte) Header {
	var h Header
	_ = h.Unmarshal(b)
	return h
}

func TestParseExtFieldsDoesNotAllocate(t *testing.T) {
	pkt := ntsTestRequest("good", true, 1)
	var buf [MaxExtFields]ExtField
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseExtFields(pkt, buf[:0]) }); n != 0 {
		t.Errorf("ParseExtFields allocates %v times per call, want 0", n)
	}
}
