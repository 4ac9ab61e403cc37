package ntsclient

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts"
	"github.com/aunsorm/timenode/netsvc/nts/siv"
)

// keResponse is a server's answer: NTPv4, SIV-CMAC-256, a server and a
// port, n cookies of 100 bytes.
func keResponse(n int) []byte {
	b := nts.AppendUint16Record(nil, true, nts.RecordNextProtocol, nts.ProtocolNTPv4)
	b = nts.AppendUint16Record(b, true, nts.RecordAEADAlgorithm, nts.AEADAESSIVCMAC256)
	b = nts.AppendRecord(b, true, nts.RecordNTPv4Server, []byte("127.0.0.1"))
	b = nts.AppendUint16Record(b, true, nts.RecordNTPv4Port, 1123)
	for i := range n {
		b = nts.AppendRecord(b, false, nts.RecordNewCookie, bytes.Repeat([]byte{byte(i)}, 100))
	}
	return nts.AppendRecord(b, true, nts.RecordEndOfMessage, nil)
}

func TestParseKEResponse(t *testing.T) {
	eom := nts.AppendRecord(nil, true, nts.RecordEndOfMessage, nil)
	proto := nts.AppendUint16Record(nil, true, nts.RecordNextProtocol, nts.ProtocolNTPv4)
	aead := nts.AppendUint16Record(nil, true, nts.RecordAEADAlgorithm, nts.AEADAESSIVCMAC256)
	cookie := nts.AppendRecord(nil, false, nts.RecordNewCookie, make([]byte, 100))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name    string
		in      []byte
		cookies int
		wantErr bool
	}{
		{"full", keResponse(8), 8, false},
		{"cookies beyond eight ignored", keResponse(10), 8, false},
		{"minimal", cat(proto, aead, cookie, eom), 1, false},
		{"unknown non-critical record ignored", cat(proto, aead, nts.AppendRecord(nil, false, 0x4000, []byte{1}), cookie, eom), 1, false},
		{"no cookie", cat(proto, aead, eom), 0, true},
		{"no end of message", cat(proto, aead, cookie), 0, true},
		{"bytes after end of message", cat(proto, aead, cookie, eom, []byte{0}), 0, true},
		{"protocol declined", cat(nts.AppendRecord(nil, true, nts.RecordNextProtocol, nil), aead, cookie, eom), 0, true},
		{"other AEAD", cat(proto, nts.AppendUint16Record(nil, true, nts.RecordAEADAlgorithm, 30), cookie, eom), 0, true},
		{"error record", cat(nts.AppendUint16Record(nil, true, nts.RecordError, nts.ErrorBadRequest), eom), 0, true},
		{"warning record", cat(proto, aead, nts.AppendUint16Record(nil, true, nts.RecordWarning, 7), cookie, eom), 0, true},
		{"unknown critical record", cat(proto, aead, nts.AppendRecord(nil, true, 0x4000, nil), cookie, eom), 0, true},
		{"oversized cookie", cat(proto, aead, nts.AppendRecord(nil, false, nts.RecordNewCookie, make([]byte, MaxCookieLen+1)), eom), 0, true},
		{"bad port", cat(proto, aead, nts.AppendRecord(nil, true, nts.RecordNTPv4Port, []byte{1}), cookie, eom), 0, true},
		{"server with a space", cat(proto, aead, nts.AppendRecord(nil, true, nts.RecordNTPv4Server, []byte("a b")), cookie, eom), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKEResponse(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && len(got.Cookies) != tt.cookies {
				t.Errorf("%d cookies, want %d", len(got.Cookies), tt.cookies)
			}
		})
	}
}

func FuzzParseKEResponse(f *testing.F) {
	f.Add(keResponse(8))
	f.Add(keResponse(1))
	f.Add(nts.AppendRecord(nts.AppendUint16Record(nil, true, nts.RecordError, 1), true, nts.RecordEndOfMessage, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append([]byte(nil), b...)
		res, err := ParseKEResponse(b)
		if !bytes.Equal(in, b) {
			t.Fatal("ParseKEResponse changed its input")
		}
		if err != nil {
			return
		}
		if len(res.Cookies) == 0 || len(res.Cookies) > MaxCookies {
			t.Fatalf("%d cookies accepted", len(res.Cookies))
		}
		for _, c := range res.Cookies {
			if len(c) == 0 || len(c) > MaxCookieLen {
				t.Fatalf("cookie of %d bytes accepted", len(c))
			}
		}
		if !complete(b) {
			t.Fatal("accepted a response readKEResponse would still be reading")
		}
	})
}

// Fixed keys and request of the reply fuzzer.
var (
	fuzzS2CKey = bytes.Repeat([]byte{0x5c}, siv.KeySize)
	fuzzReq    = Request{UniqueID: bytes.Repeat([]byte{0xa5}, UniqueIDLen), Tx: 0x0123456789abcdef}
)

// sealReply is a server's reply to req: the header, the echoed Unique
// Identifier (none if req has none), an authenticator sealed with s2c
// carrying cookies.
func sealReply(s2c *siv.AEAD, req *Request, h ntp.Header, cookies ...[]byte) []byte {
	h.Mode, h.Version, h.OrigTime = ntp.ModeServer, 4, req.Tx
	pkt := make([]byte, ntp.HeaderLen)
	h.MarshalTo(pkt)
	if req.UniqueID != nil {
		pkt = ntp.AppendExtField(pkt, ntp.ExtUniqueIdentifier, req.UniqueID)
	}
	var plain []byte
	for _, c := range cookies {
		plain = ntp.AppendExtField(plain, ntp.ExtNTSCookie, c)
	}
	nonce := bytes.Repeat([]byte{7}, NonceLen)
	ct := s2c.Seal(nil, nonce, plain, pkt)
	body := binary.BigEndian.AppendUint16(nil, NonceLen)
	body = binary.BigEndian.AppendUint16(body, uint16(len(ct)))
	body = append(append(body, nonce...), ct...)
	return ntp.AppendExtField(pkt, ntp.ExtNTSAuthenticator, body)
}

// nakReply is an NTS NAK echoing req's identifier.
func nakReply(req *Request) []byte {
	h := ntp.Header{Leap: ntp.LeapAlarm, Version: 4, Mode: ntp.ModeServer, RefID: ntp.KissNTSN, OrigTime: req.Tx}
	pkt := make([]byte, ntp.HeaderLen)
	h.MarshalTo(pkt)
	return ntp.AppendExtField(pkt, ntp.ExtUniqueIdentifier, req.UniqueID)
}

func FuzzVerifyReply(f *testing.F) {
	s2c, err := siv.New(fuzzS2CKey)
	if err != nil {
		f.Fatal(err)
	}
	h := ntp.Header{Stratum: 1, RefID: [4]byte{'G', 'P', 'S', 0}, RxTime: 1 << 40, TxTime: 1<<40 + 1}
	f.Add(sealReply(s2c, &fuzzReq, h, make([]byte, 100), make([]byte, 100)))
	f.Add(sealReply(s2c, &fuzzReq, h))
	f.Add(nakReply(&fuzzReq))
	seedPrefix := sealReply(s2c, &fuzzReq, h)[:ntp.HeaderLen+ntp.ExtHeaderLen+UniqueIDLen]
	f.Fuzz(func(t *testing.T, pkt []byte) {
		r, err := VerifyReply(pkt, &fuzzReq, s2c)
		if err != nil {
			return
		}
		if r.Header.OrigTime != fuzzReq.Tx || r.Header.Mode != ntp.ModeServer {
			t.Fatalf("accepted header %+v", r.Header)
		}
		if len(r.Cookies) > MaxCookies {
			t.Fatalf("%d cookies accepted", len(r.Cookies))
		}
		// Anything accepted is authentic: the fuzzer cannot forge the
		// authenticator, so the header and identifier are a seed's.
		if !bytes.HasPrefix(pkt, seedPrefix) {
			t.Fatalf("accepted a reply whose header or identifier was changed")
		}
	})
}

func TestVerifyReply(t *testing.T) {
	s2c, _ := siv.New(fuzzS2CKey)
	other, _ := siv.New(bytes.Repeat([]byte{1}, siv.KeySize))
	h := ntp.Header{Stratum: 1, RxTime: 1 << 40, TxTime: 1<<40 + 1}
	good := sealReply(s2c, &fuzzReq, h, make([]byte, 100))
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 1
		return b
	}
	// A second identifier before the authenticator, sealed: authentic
	// but ambiguous.
	twoUIDs := func() []byte {
		hh := h
		hh.Mode, hh.Version, hh.OrigTime = ntp.ModeServer, 4, fuzzReq.Tx
		pkt := make([]byte, ntp.HeaderLen)
		hh.MarshalTo(pkt)
		pkt = ntp.AppendExtField(pkt, ntp.ExtUniqueIdentifier, fuzzReq.UniqueID)
		pkt = ntp.AppendExtField(pkt, ntp.ExtUniqueIdentifier, fuzzReq.UniqueID)
		nonce := bytes.Repeat([]byte{7}, NonceLen)
		ct := s2c.Seal(nil, nonce, nil, pkt)
		body := binary.BigEndian.AppendUint16(nil, NonceLen)
		body = binary.BigEndian.AppendUint16(body, uint16(len(ct)))
		return ntp.AppendExtField(pkt, ntp.ExtNTSAuthenticator, append(append(body, nonce...), ct...))
	}()
	otherReq := fuzzReq
	otherReq.UniqueID = bytes.Repeat([]byte{0x5a}, UniqueIDLen)
	tests := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"good", good, nil},
		{"transmit time changed", flip(47), ErrAuthentication},
		{"identifier changed", flip(ntp.HeaderLen + 10), ErrUniqueID},
		{"ciphertext changed", flip(len(good) - 1), ErrAuthentication},
		{"origin changed", flip(31), ErrNotReply},
		{"wrong key", sealReply(other, &fuzzReq, h), ErrAuthentication},
		{"someone else's identifier", sealReply(s2c, &otherReq, h), ErrUniqueID},
		{"NAK", nakReply(&fuzzReq), ErrNAK},
		{"NAK for someone else", nakReply(&otherReq), ErrUniqueID},
		{"no authenticator", good[:ntp.HeaderLen+ntp.ExtHeaderLen+UniqueIDLen], ErrAuthentication},
		{"identifier twice", twoUIDs, ErrUniqueID},
		{"identifier only after the authenticator", ntp.AppendExtField(sealReply(s2c, &Request{Tx: fuzzReq.Tx}, h), ntp.ExtUniqueIdentifier, fuzzReq.UniqueID), ErrUniqueID},
		{"short", good[:40], ErrNotReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := VerifyReply(tt.pkt, &fuzzReq, s2c)
			if tt.want == nil {
				if err != nil || len(r.Cookies) != 1 || len(r.Cookies[0]) != 100 {
					t.Fatalf("got %+v, %v; want one cookie", r, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
