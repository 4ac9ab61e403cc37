package nts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts/siv"
)

// testPKI is a throwaway CA and a server certificate it signed for
// 127.0.0.1 and localhost.
type testPKI struct {
	roots  *x509.CertPool
	server tls.Certificate
	caPEM  string // path of the CA certificate in PEM
}

func newTestPKI(t testing.TB, name string) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{roots: x509.NewCertPool(), server: tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}
	p.roots.AddCert(ca)
	p.caPEM = filepath.Join(t.TempDir(), name+"-ca.pem")
	if err := os.WriteFile(p.caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startKE serves cfg (on 127.0.0.1:0 unless set) until the test ends.
func startKE(t testing.TB, cfg Config) *KEServer {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := NewKEServer(cfg)
	if err != nil {
		t.Fatalf("NewKEServer: %v", err)
	}
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	testbin.Serve(t, "server", s.Serve)
	return s
}

// hostClock is the test's time source: the host clock, read only.
type hostClock struct{}

func (hostClock) Now() time.Time { return time.Now() }

func syncedStatus() ntp.Status {
	return ntp.Status{Synchronized: true, Stratum: 1, RefID: [4]byte{'G', 'P', 'S', 0},
		RefTime: time.Now().Add(-time.Second), RootDispersion: 20 * time.Microsecond}
}

// startNTP serves NTP with NTS on addr (127.0.0.1:0 when empty) until the
// test ends.
func startNTP(t testing.TB, addr string, proc ntp.NTSProcessor, rl ntp.RateLimit) *ntp.Server {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s, err := ntp.NewServer(ntp.Config{Addr: addr, Workers: 1, NTS: proc, RateLimit: rl}, hostClock{}, syncedStatus, testLogger())
	if err != nil {
		t.Fatalf("ntp.NewServer: %v", err)
	}
	if err := s.Listen(); err != nil {
		t.Fatalf("ntp Listen: %v", err)
	}
	testbin.Serve(t, "server", s.Serve)
	return s
}

// keResult is what a KE client learned.
type keResult struct {
	records []Record
	keys    Keys
	cookies [][]byte
	errCode int // -1 without an Error record
}

// keExchange runs one NTS-KE session as a client: handshake with roots,
// write req, read the response to End of Message.
func keExchange(t testing.TB, addr string, roots *x509.CertPool, req []byte) (*keResult, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		RootCAs: roots, ServerName: "localhost", NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13,
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(conn)
	if err != nil {
		return nil, err
	}
	st := conn.ConnectionState()
	res := &keResult{errCode: -1}
	if res.keys, err = ExportKeys(&st); err != nil {
		return nil, err
	}
	for len(raw) > 0 {
		r, rest, err := parseRecord(raw)
		if err != nil {
			return nil, err
		}
		raw = rest
		res.records = append(res.records, r)
		switch r.Type {
		case RecordNewCookie:
			res.cookies = append(res.cookies, r.Body)
		case RecordError:
			res.errCode = int(binary.BigEndian.Uint16(r.Body))
		}
	}
	return res, nil
}

// goodKERequest offers NTPv4 with AES-128-GCM-SIV (30) and SIV-CMAC-256,
// as a current chrony does.
func goodKERequest() []byte {
	b := appendUint16Record(nil, true, RecordNextProtocol, ProtocolNTPv4)
	b = appendUint16Record(b, false, RecordAEADAlgorithm, 30, aeadSIV256)
	return AppendRecord(b, true, RecordEndOfMessage, nil)
}

// ntsRequest builds an NTS-protected client request with cookie,
// placeholders and an authenticator sealed with c2s over the packet; a nil
// uid leaves the Unique Identifier out.
func ntsRequest(t testing.TB, c2s []byte, cookie []byte, uid []byte, placeholders int, tx uint64) []byte {
	t.Helper()
	pkt := make([]byte, ntp.HeaderLen)
	pkt[0] = 0<<6 | 4<<3 | ntp.ModeClient
	binary.BigEndian.PutUint64(pkt[40:], tx)
	if uid != nil {
		pkt = ntp.AppendExtField(pkt, ntp.ExtUniqueIdentifier, uid)
	}
	pkt = ntp.AppendExtField(pkt, ntp.ExtNTSCookie, cookie)
	for range placeholders {
		pkt = ntp.AppendExtField(pkt, ntp.ExtNTSCookiePlaceholder, make([]byte, len(cookie)))
	}
	a, err := siv.New(c2s)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	ct := a.Seal(nil, nonce, nil, pkt)
	body := binary.BigEndian.AppendUint16(nil, uint16(len(nonce)))
	body = binary.BigEndian.AppendUint16(body, uint16(len(ct)))
	body = append(append(body, nonce...), ct...)
	return ntp.AppendExtField(pkt, ntp.ExtNTSAuthenticator, body)
}

// verifiedReply is an NTS reply that passed the client's checks.
type verifiedReply struct {
	header  ntp.Header
	cookies [][]byte
}

var errNAK = errors.New("NTS NAK")

// verifyReply checks a reply as a client would: server mode, origin
// timestamp, Unique Identifier echoed, authenticator valid under s2c, and
// returns the header and the new cookies. An NTS NAK returns errNAK.
func verifyReply(reply, uid, s2c []byte, tx uint64) (*verifiedReply, error) {
	var h ntp.Header
	if err := h.Unmarshal(reply); err != nil {
		return nil, err
	}
	if h.Mode != ntp.ModeServer || uint64(h.OrigTime) != tx {
		return nil, errors.New("not a reply to our request")
	}
	efs, err := ntp.ParseExtFields(reply, nil)
	if err != nil {
		return nil, err
	}
	if len(efs) == 0 || efs[0].Type != ntp.ExtUniqueIdentifier || string(efs[0].Body) != string(uid) {
		return nil, errors.New("unique identifier not echoed first")
	}
	if h.Stratum == 0 && h.RefID == ntp.KissNTSN {
		if len(efs) != 1 {
			return nil, errors.New("NAK with more than the unique identifier")
		}
		return nil, errNAK
	}
	if len(efs) != 2 || efs[1].Type != ntp.ExtNTSAuthenticator {
		return nil, errors.New("no authenticator after the unique identifier")
	}
	nonce, ct, ok := parseAuthenticator(efs[1].Body)
	if !ok {
		return nil, errors.New("malformed authenticator")
	}
	a, err := siv.New(s2c)
	if err != nil {
		return nil, err
	}
	plain, err := a.Open(nil, nonce, ct, reply[:efs[1].Offset])
	if err != nil {
		return nil, err
	}
	inner, err := ntp.ParseExtFields(append(make([]byte, ntp.HeaderLen), plain...), nil)
	if err != nil {
		return nil, err
	}
	v := &verifiedReply{header: h}
	for _, ef := range inner {
		if ef.Type == ntp.ExtNTSCookie {
			v.cookies = append(v.cookies, ef.Body)
		}
	}
	return v, nil
}

// udpExchange sends pkt to addr and returns the reply, or nil on timeout.
func udpExchange(t testing.TB, addr net.Addr, pkt []byte) []byte {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}
