package nts

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/ntp"
)

// TestEndToEnd is a whole NTS association in process: NTS-KE over TLS on
// loopback, cookies, an authenticated NTP request, and the reply verified
// with the keys the client exported itself; then the fresh cookies from
// the reply are spent, and broken requests get NAKs.
func TestEndToEnd(t *testing.T) {
	pki := newTestPKI(t, "e2e")
	ke := startKE(t, Config{Certificates: []tls.Certificate{pki.server}, NTPServer: "127.0.0.1", NTPPort: 1123, Log: testLogger()})
	srv := startNTP(t, "", ke.Processor(), ntp.RateLimit{})

	res, err := keExchange(t, ke.Addr().String(), pki.roots, goodKERequest())
	if err != nil {
		t.Fatalf("KE: %v", err)
	}
	if res.errCode != -1 || len(res.cookies) != DefaultCookies {
		t.Fatalf("KE response: error %d, %d cookies", res.errCode, len(res.cookies))
	}
	wantTypes := []uint16{RecordNextProtocol, RecordAEADAlgorithm, RecordNTPv4Server, RecordNTPv4Port}
	for i, typ := range wantTypes {
		if res.records[i].Type != typ || !res.records[i].Critical {
			t.Fatalf("record %d: %+v, want critical type %d", i, res.records[i], typ)
		}
	}
	if string(res.records[1].Body) != "\x00\x0f" || string(res.records[2].Body) != "127.0.0.1" ||
		string(res.records[3].Body) != "\x04\x63" {
		t.Fatalf("negotiated %x %q %x", res.records[1].Body, res.records[2].Body, res.records[3].Body)
	}
	last := res.records[len(res.records)-1]
	if last.Type != RecordEndOfMessage || !last.Critical {
		t.Fatalf("last record %+v, want end of message", last)
	}
	for _, c := range res.cookies {
		if len(c) != CookieLen {
			t.Fatalf("cookie of %d bytes", len(c))
		}
	}

	uid := make([]byte, 32)
	_, _ = rand.Read(uid)
	const tx = 0xe5e5e5e5_12345678
	req := ntsRequest(t, res.keys.C2S[:], res.cookies[0], uid, 2, tx)
	reply := udpExchange(t, srv.Addr(), req)
	if reply == nil {
		t.Fatal("no reply to an NTS request")
	}
	if len(reply) > len(req) {
		t.Fatalf("reply of %d bytes to a request of %d: amplification", len(reply), len(req))
	}
	v, err := verifyReply(reply, uid, res.keys.S2C[:], tx)
	if err != nil {
		t.Fatalf("verify reply: %v", err)
	}
	if len(v.cookies) != 3 {
		t.Fatalf("%d cookies for a cookie and 2 placeholders, want 3", len(v.cookies))
	}
	if v.header.Stratum != 1 || v.header.Leap != ntp.LeapNoWarning || v.header.RefID != [4]byte{'G', 'P', 'S', 0} ||
		v.header.RootDispersion != ntp.ShortFromDuration(20*time.Microsecond) {
		t.Fatalf("header %+v is not the plain NTP header", v.header)
	}
	// The server's time source is the host clock: the reply's transmit
	// time must be near the host's (a hang bound, not a precision claim).
	if d := v.header.TxTime.Time(time.Now()).Sub(time.Now()); d > 5*time.Second || d < -5*time.Second {
		t.Fatalf("transmit time off by %v", d)
	}

	// A fresh cookie from the reply is as good as one from NTS-KE.
	req2 := ntsRequest(t, res.keys.C2S[:], v.cookies[2], uid, 0, tx+1)
	if _, err := verifyReply(udpExchange(t, srv.Addr(), req2), uid, res.keys.S2C[:], tx+1); err != nil {
		t.Fatalf("request with a cookie from a reply: %v", err)
	}

	// Broken requests: each gets an NTS NAK that echoes the identifier.
	other := make([]byte, CookieLen)
	copy(other, res.cookies[1])
	other[len(other)-1] ^= 1
	wrongKey := res.keys.S2C[:]
	tampered := ntsRequest(t, res.keys.C2S[:], res.cookies[3], uid, 0, tx+2)
	tampered[47] ^= 1 // inside the transmit timestamp, covered by the authenticator
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"forged cookie", ntsRequest(t, res.keys.C2S[:], other, uid, 0, tx+2)},
		{"wrong C2S key", ntsRequest(t, wrongKey, res.cookies[4], uid, 0, tx+2)},
		{"tampered header", tampered},
	} {
		got := udpExchange(t, srv.Addr(), tc.pkt)
		var h ntp.Header
		_ = h.Unmarshal(got)
		wantTx := uint64(tx + 2)
		if tc.name == "tampered header" {
			wantTx ^= 1
		}
		if _, err := verifyReply(got, uid, res.keys.S2C[:], wantTx); !errors.Is(err, errNAK) {
			t.Errorf("%s: reply %x: %v, want NTS NAK", tc.name, got, err)
		}
		if len(got) != ntp.HeaderLen+4+len(uid) || h.TxTime != h.OrigTime {
			t.Errorf("%s: NAK of %d bytes, transmit %x: more than a KoD and the identifier", tc.name, len(got), h.TxTime)
		}
	}

	// Without a Unique Identifier no NAK can be matched: dropped.
	noUID := ntsRequest(t, res.keys.C2S[:], other, nil, 0, tx+3)
	if got := udpExchange(t, srv.Addr(), noUID); got != nil {
		t.Errorf("request without a unique identifier answered: %x", got)
	}

	st := ke.Stats()
	if st.NTPAuthenticated != 2 || st.NTPBadCookie != 1 || st.NTPBadAuth != 2 || st.KEResponses != 1 {
		t.Errorf("stats %+v", st)
	}
	nst := srv.Stats()
	if nst.NTSReplies != 2 || nst.NTSNAKs != 3 {
		t.Errorf("ntp stats: %d NTS replies, %d NAKs; want 2, 3", nst.NTSReplies, nst.NTSNAKs)
	}

	// Plain NTP still works next to NTS.
	plain := make([]byte, ntp.HeaderLen)
	plain[0] = 4<<3 | ntp.ModeClient
	if got := udpExchange(t, srv.Addr(), plain); len(got) != ntp.HeaderLen {
		t.Errorf("plain request: reply of %d bytes", len(got))
	}
}

// TestNTSRateLimit checks that an NTS client over the rate gets the plain
// KoD RATE, like any client, and nothing else.
func TestNTSRateLimit(t *testing.T) {
	pki := newTestPKI(t, "rate")
	ke := startKE(t, Config{Certificates: []tls.Certificate{pki.server}})
	srv := startNTP(t, "", ke.Processor(), ntp.RateLimit{Interval: time.Hour, Burst: 1, KoDInterval: time.Hour})
	res, err := keExchange(t, ke.Addr().String(), pki.roots, goodKERequest())
	if err != nil {
		t.Fatal(err)
	}
	uid := bytes.Repeat([]byte{7}, 32)
	first := udpExchange(t, srv.Addr(), ntsRequest(t, res.keys.C2S[:], res.cookies[0], uid, 0, 1))
	if _, err := verifyReply(first, uid, res.keys.S2C[:], 1); err != nil {
		t.Fatalf("first request: %v", err)
	}
	second := udpExchange(t, srv.Addr(), ntsRequest(t, res.keys.C2S[:], res.cookies[1], uid, 0, 2))
	var h ntp.Header
	if err := h.Unmarshal(second); err != nil || h.RefID != ntp.KissRate || len(second) != ntp.HeaderLen {
		t.Fatalf("second request: %x, want a 48-byte KoD RATE", second)
	}
	if got := udpExchange(t, srv.Addr(), ntsRequest(t, res.keys.C2S[:], res.cookies[2], uid, 0, 3)); got != nil {
		t.Fatalf("third request within the KoD interval answered: %x", got)
	}
}

// TestKEProtocolErrors drives the KE server over TLS with requests it must
// refuse or cannot serve.
func TestKEProtocolErrors(t *testing.T) {
	pki := newTestPKI(t, "errors")
	ke := startKE(t, Config{Certificates: []tls.Certificate{pki.server}, IOTimeout: 2 * time.Second})
	addr := ke.Addr().String()
	eom := AppendRecord(nil, true, RecordEndOfMessage, nil)
	proto := appendUint16Record(nil, true, RecordNextProtocol, ProtocolNTPv4)
	aead := appendUint16Record(nil, true, RecordAEADAlgorithm, aeadSIV256)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name      string
		req       []byte
		errCode   int
		emptyType int // record type that must come back with an empty body, or -1
	}{
		{"unknown critical record", cat(proto, aead, AppendRecord(nil, true, 0x1234, nil), eom), ErrorUnrecognizedCritical, -1},
		{"no next protocol", cat(aead, eom), ErrorBadRequest, -1},
		{"NTPv4 without AEAD", cat(proto, eom), ErrorBadRequest, -1},
		{"data after end of message", cat(proto, aead, eom, eom), ErrorBadRequest, -1},
		{"too long", bytes.Repeat(AppendRecord(nil, false, 0x4321, make([]byte, 200)), 6), ErrorBadRequest, -1},
		{"no NTPv4", cat(appendUint16Record(nil, true, RecordNextProtocol, 0x8001), eom), -1, RecordNextProtocol},
		{"no SIV", cat(proto, appendUint16Record(nil, true, RecordAEADAlgorithm, 30), eom), -1, RecordAEADAlgorithm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := keExchange(t, addr, pki.roots, tc.req)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if res.errCode != tc.errCode || len(res.cookies) != 0 {
				t.Fatalf("error code %d with %d cookies, want %d and none", res.errCode, len(res.cookies), tc.errCode)
			}
			if tc.emptyType >= 0 {
				found := false
				for _, r := range res.records {
					found = found || (int(r.Type) == tc.emptyType && len(r.Body) == 0)
				}
				if !found {
					t.Fatalf("no empty record %d in %+v", tc.emptyType, res.records)
				}
			}
		})
	}

	// TLS policy: no ALPN, wrong ALPN, TLS 1.2, untrusted CA.
	for _, tc := range []struct {
		name string
		conf *tls.Config
	}{
		{"no ALPN", &tls.Config{RootCAs: pki.roots, ServerName: "localhost"}},
		{"wrong ALPN", &tls.Config{RootCAs: pki.roots, ServerName: "localhost", NextProtos: []string{"h2"}}},
		{"TLS 1.2", &tls.Config{RootCAs: pki.roots, ServerName: "localhost", NextProtos: []string{ALPN}, MaxVersion: tls.VersionTLS12}},
		{"untrusted CA", &tls.Config{RootCAs: newTestPKI(t, "other").roots, ServerName: "localhost", NextProtos: []string{ALPN}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tc.conf)
			if err != nil {
				return // refused in the handshake
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = conn.Write(goodKERequest())
			buf := make([]byte, 512)
			if n, err := conn.Read(buf); err == nil {
				t.Fatalf("server answered %x", buf[:n])
			}
		})
	}

	// A client that never finishes its request is cut off by the deadline.
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.roots, ServerName: "localhost", NextProtos: []string{ALPN}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write(proto)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(make([]byte, 64)); err == nil {
		t.Fatalf("server answered an unfinished request: %d bytes", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("server kept an unfinished session open past its deadline")
	}
	if st := ke.Stats(); st.KEAborted == 0 || st.HandshakeFailures < 3 {
		t.Errorf("stats %+v", st)
	}
}
