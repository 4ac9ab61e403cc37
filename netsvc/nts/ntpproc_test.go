package nts

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts/siv"
	"github.com/jonboulle/clockwork"
)

// testProcessor returns a processor with a deterministic key ring, the
// session keys of a client and a cookie carrying them.
func testProcessor(t testing.TB) (*Processor, Keys, []byte) {
	t.Helper()
	ring, err := newKeyRing(newSeededRand(9), clockwork.NewFakeClock().Now, 2)
	if err != nil {
		t.Fatal(err)
	}
	keys := testKeys()
	cookie, err := ring.appendCookie(nil, &keys)
	if err != nil {
		t.Fatal(err)
	}
	return &Processor{keys: ring, rand: newSeededRand(10)}, keys, cookie
}

// process runs ProcessNTS the way the NTP server does: header in place,
// room up to the request's length.
func process(p *Processor, req []byte) ([]byte, bool) {
	efs, err := ntp.ParseExtFields(req, nil)
	if err != nil {
		return nil, false
	}
	return p.ProcessNTS(req, efs, replyRoom(len(req)))
}

// replyRoom is a server-mode reply header with room up to capacity.
func replyRoom(capacity int) []byte {
	b := make([]byte, ntp.HeaderLen, capacity)
	b[0] = 4<<3 | ntp.ModeServer
	return b
}

// authField seals inner (extension fields, may be empty) over pkt with c2s.
func authField(t testing.TB, pkt, c2s, nonce, inner []byte) []byte {
	t.Helper()
	a, err := siv.New(c2s)
	if err != nil {
		t.Fatal(err)
	}
	ct := a.Seal(nil, nonce, inner, pkt)
	body := binary.BigEndian.AppendUint16(nil, uint16(len(nonce)))
	body = binary.BigEndian.AppendUint16(body, uint16(len(ct)))
	body = append(body, nonce...)
	body = append(body, make([]byte, pad4(len(nonce))-len(nonce))...)
	body = append(body, ct...)
	return ntp.AppendExtField(pkt, ntp.ExtNTSAuthenticator, body)
}

func TestProcessNTS(t *testing.T) {
	p, keys, cookie := testProcessor(t)
	uid := bytes.Repeat([]byte{0x55}, 32)
	header := func() []byte {
		h := make([]byte, ntp.HeaderLen)
		h[0] = 4<<3 | ntp.ModeClient
		return h
	}
	nonce := bytes.Repeat([]byte{1}, 16)
	placeholder := func(b []byte, n int) []byte {
		return ntp.AppendExtField(b, ntp.ExtNTSCookiePlaceholder, make([]byte, n))
	}
	build := func(fields func(b []byte) []byte, inner []byte) []byte {
		return authField(t, fields(header()), keys.C2S[:], nonce, inner)
	}
	std := func(b []byte) []byte {
		b = ntp.AppendExtField(b, ntp.ExtUniqueIdentifier, uid)
		return ntp.AppendExtField(b, ntp.ExtNTSCookie, cookie)
	}
	tests := []struct {
		name    string
		req     []byte
		ok      bool
		cookies int
	}{
		{"plain", build(std, nil), true, 1},
		{"two placeholders", build(func(b []byte) []byte { return placeholder(placeholder(std(b), CookieLen), CookieLen) }, nil), true, 3},
		{"wrong-size placeholder asks nothing", build(func(b []byte) []byte { return placeholder(std(b), 40) }, nil), true, 1},
		{"nine placeholders give eight cookies", build(func(b []byte) []byte {
			b = std(b)
			for range 9 {
				b = placeholder(b, CookieLen)
			}
			return b
		}, nil), true, MaxReplyCookies},
		{"encrypted fields inside", build(std, ntp.AppendExtField(nil, 0x7777, []byte("secret"))), true, 1},
		{"longer identifier", build(func(b []byte) []byte {
			b = ntp.AppendExtField(b, ntp.ExtUniqueIdentifier, bytes.Repeat([]byte{1}, 64))
			return ntp.AppendExtField(b, ntp.ExtNTSCookie, cookie)
		}, nil), true, 1},

		{"no identifier", build(func(b []byte) []byte { return ntp.AppendExtField(b, ntp.ExtNTSCookie, cookie) }, nil), false, 0},
		{"short identifier", build(func(b []byte) []byte {
			b = ntp.AppendExtField(b, ntp.ExtUniqueIdentifier, uid[:27])
			return ntp.AppendExtField(b, ntp.ExtNTSCookie, cookie)
		}, nil), false, 0},
		{"two identifiers", build(func(b []byte) []byte {
			return std(ntp.AppendExtField(b, ntp.ExtUniqueIdentifier, uid))
		}, nil), false, 0},
		{"two cookies", build(func(b []byte) []byte { return ntp.AppendExtField(std(b), ntp.ExtNTSCookie, cookie) }, nil), false, 0},
		{"cookie after the authenticator", ntp.AppendExtField(authField(t,
			ntp.AppendExtField(header(), ntp.ExtUniqueIdentifier, uid), keys.C2S[:], nonce, nil), ntp.ExtNTSCookie, cookie), false, 0},
		{"no authenticator", std(header()), false, 0},
		{"short nonce", authField(t, std(header()), keys.C2S[:], nonce[:12], nil), false, 0},
		{"malformed inner fields", build(std, []byte("not a field")), false, 0},
		{"wrong key", authField(t, std(header()), keys.S2C[:], nonce, nil), false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reply, ok := process(p, tc.req)
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if len(reply) > len(tc.req) {
				t.Fatalf("reply %d bytes, request %d", len(reply), len(tc.req))
			}
			reqEFs, _ := ntp.ParseExtFields(tc.req, nil)
			v, err := verifyReply(reply, reqEFs[0].Body, keys.S2C[:], 0)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if len(v.cookies) != tc.cookies {
				t.Fatalf("%d cookies, want %d", len(v.cookies), tc.cookies)
			}
			for _, c := range v.cookies {
				if got, err := p.keys.openCookie(c); err != nil || got != keys {
					t.Fatalf("returned cookie does not carry the keys: %v", err)
				}
			}
		})
	}

	// When the request leaves room for fewer cookies than asked (a short
	// reply buffer stands for it), fewer are sent, never a longer reply.
	req := build(func(b []byte) []byte { return placeholder(placeholder(std(b), CookieLen), CookieLen) }, nil)
	efs, _ := ntp.ParseExtFields(req, nil)
	room := len(req) - 2*cookieFieldLen + 10
	out, ok := p.ProcessNTS(req, efs, replyRoom(room))
	if !ok || len(out) > room {
		t.Fatalf("with room %d: ok %v, %d bytes", room, ok, len(out))
	}
	if v, err := verifyReply(out, uid, keys.S2C[:], 0); err != nil || len(v.cookies) != 1 {
		t.Fatalf("with room for one cookie: %v", err)
	}
	if _, ok := p.ProcessNTS(req, efs, replyRoom(ntp.HeaderLen+40)); ok {
		t.Fatalf("answered without room for a cookie")
	}
}

func TestParseAuthenticator(t *testing.T) {
	body := func(nl, cl, have int) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(nl))
		b = binary.BigEndian.AppendUint16(b, uint16(cl))
		return append(b, make([]byte, have)...)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"16+16", body(16, 16, 32), true},
		{"16+16 with padding", body(16, 16, 48), true},
		{"odd nonce padded", body(17, 16, 20+16), true},
		{"odd nonce unpadded", body(17, 16, 17+16), false},
		{"nonce too short", body(15, 16, 32), false},
		{"tag too short", body(16, 15, 32), false},
		{"ciphertext past the end", body(16, 32, 40), false},
		{"no lengths", []byte{0, 16}, false},
	} {
		nonce, ct, ok := parseAuthenticator(tc.b)
		if ok != tc.ok {
			t.Errorf("%s: ok %v", tc.name, ok)
		}
		if ok && (len(nonce) != int(binary.BigEndian.Uint16(tc.b)) || len(ct) != int(binary.BigEndian.Uint16(tc.b[2:]))) {
			t.Errorf("%s: nonce %d ct %d bytes", tc.name, len(nonce), len(ct))
		}
	}
}

// FuzzProcessNTS feeds arbitrary packets to the processor: it must never
// panic or write past its room, and whatever it accepts must verify under
// the client's S2C key and carry the identifier the request did.
func FuzzProcessNTS(f *testing.F) {
	p, keys, cookie := testProcessor(f)
	h := make([]byte, ntp.HeaderLen)
	h[0] = 4<<3 | ntp.ModeClient
	good := ntp.AppendExtField(bytes.Clone(h), ntp.ExtUniqueIdentifier, bytes.Repeat([]byte{3}, 32))
	good = ntp.AppendExtField(good, ntp.ExtNTSCookie, cookie)
	good = ntp.AppendExtField(good, ntp.ExtNTSCookiePlaceholder, make([]byte, CookieLen))
	good = authField(f, good, keys.C2S[:], bytes.Repeat([]byte{2}, 16), nil)
	f.Add(good)
	f.Add(good[:len(good)-4])
	f.Add(h)
	f.Fuzz(func(t *testing.T, req []byte) {
		if len(req) < ntp.HeaderLen {
			return
		}
		efs, err := ntp.ParseExtFields(req, nil)
		if err != nil {
			return
		}
		room := replyRoom(len(req))
		reply, ok := p.ProcessNTS(req, efs, room)
		if len(reply) > len(req) || &reply[:1][0] != &room[:1][0] {
			t.Fatalf("reply of %d bytes outside its room of %d", len(reply), len(req))
		}
		if !ok {
			return
		}
		fields, _ := classify(efs)
		if _, err := verifyReply(reply, fields.uid.Body, keys.S2C[:], 0); err != nil {
			t.Fatalf("accepted request's reply does not verify: %v", err)
		}
	})
}

// BenchmarkProcessNTS measures one authenticated request with two
// placeholders: cookie open, authenticator check, three cookies sealed.
// BenchmarkProcessNTS serves one client's request with no placeholder (a
// client holding its eight cookies, as chrony does between polls) and with
// two (a client that lost replies and asks for more cookies).
func BenchmarkProcessNTS(b *testing.B) {
	for _, placeholders := range []int{0, 2} {
		b.Run(fmt.Sprintf("placeholders=%d", placeholders), func(b *testing.B) {
			p, keys, cookie := testProcessor(b)
			h := make([]byte, ntp.HeaderLen)
			h[0] = 4<<3 | ntp.ModeClient
			req := ntp.AppendExtField(h, ntp.ExtUniqueIdentifier, bytes.Repeat([]byte{3}, 32))
			req = ntp.AppendExtField(req, ntp.ExtNTSCookie, cookie)
			for range placeholders {
				req = ntp.AppendExtField(req, ntp.ExtNTSCookiePlaceholder, make([]byte, CookieLen))
			}
			req = authField(b, req, keys.C2S[:], bytes.Repeat([]byte{2}, 16), nil)
			efs, _ := ntp.ParseExtFields(req, nil)
			room := replyRoom(len(req))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := p.ProcessNTS(req, efs, room); !ok {
					b.Fatal("rejected")
				}
			}
		})
	}
}

// TestProcessNTSConcurrent runs requests from several goroutines while the
// master key rotates: the pooled scratch memory and the key snapshot must
// not mix one request's keys into another's reply (the race detector
// watches the rest). Each client has its own keys, so a reply sealed with
// another client's S2C key fails to verify.
func TestProcessNTSConcurrent(t *testing.T) {
	const clients, requests, rotations = 4, 200, 5
	ring, err := newKeyRing(newSeededRand(11), clockwork.NewFakeClock().Now, rotations+2)
	if err != nil {
		t.Fatal(err)
	}
	p := &Processor{keys: ring, rand: newSeededRand(12)}
	var wg sync.WaitGroup
	errs := make(chan error, clients+1)
	wg.Go(func() {
		for range rotations {
			if err := ring.rotate(); err != nil {
				errs <- err
				return
			}
		}
	})
	for c := range clients {
		wg.Go(func() {
			var keys Keys
			for i := range keys.C2S {
				keys.C2S[i], keys.S2C[i] = byte(c), byte(c+100)
			}
			cookie, err := ring.appendCookie(nil, &keys)
			if err != nil {
				errs <- err
				return
			}
			uid := bytes.Repeat([]byte{byte(c)}, 32)
			for i := range requests {
				tx := uint64(c)<<32 | uint64(i)
				reply, ok := process(p, ntsRequest(t, keys.C2S[:], cookie, uid, 1, tx))
				if !ok {
					errs <- fmt.Errorf("client %d request %d rejected", c, i)
					return
				}
				// process leaves the origin timestamp to the NTP server.
				v, err := verifyReply(reply, uid, keys.S2C[:], 0)
				if err != nil {
					errs <- fmt.Errorf("client %d request %d: %w", c, i, err)
					return
				}
				// The fresh cookies carry this client's keys.
				if got, err := ring.openCookie(v.cookies[1]); err != nil || got != keys {
					errs <- fmt.Errorf("client %d request %d: new cookie opens to other keys (%v)", c, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
