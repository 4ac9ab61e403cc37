package ntsclient

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts"
)

// testCA is a throwaway CA with one server certificate for 127.0.0.1 and
// localhost, valid from an hour before the test's clock to a day after
// (so a future-dated guest's run passes as well as today's).
type testCA struct {
	roots           *x509.CertPool
	server          tls.Certificate
	certPEM, keyPEM string // the server's chain and key, PEM files
	caPEM           string // the CA certificate, PEM file
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
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
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &testCA{
		roots:   x509.NewCertPool(),
		server:  tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey},
		certPEM: filepath.Join(dir, "server.crt"), keyPEM: filepath.Join(dir, "server.key"), caPEM: filepath.Join(dir, "ca.crt"),
	}
	c.roots.AddCert(ca)
	for path, blk := range map[string]*pem.Block{
		c.certPEM: {Type: "CERTIFICATE", Bytes: srvDER},
		c.keyPEM:  {Type: "PRIVATE KEY", Bytes: keyDER},
		c.caPEM:   {Type: "CERTIFICATE", Bytes: caDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// hostClock is the in-process server's time source: the host clock,
// read only.
type hostClock struct{}

func (hostClock) Now() time.Time { return time.Now() }

// ourServer is the appliance's own NTS-KE and NTP servers, in process on
// loopback.
type ourServer struct {
	ke  *nts.KEServer
	ntp *ntp.Server
	ca  *testCA
}

// startOurServer starts netsvc/nts's KE server and an NTP server using its
// processor; the KE server announces the NTP server's port.
func startOurServer(t testing.TB, status func() ntp.Status) *ourServer {
	t.Helper()
	ca := newTestCA(t, "ours")
	// The NTP server needs the processor, the KE server the NTP port:
	// reserve the port first.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()
	ke, err := nts.NewKEServer(nts.Config{Addr: "127.0.0.1:0", Certificates: []tls.Certificate{ca.server},
		NTPPort: port, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := ke.Listen(); err != nil {
		t.Fatal(err)
	}
	testbin.Serve(t, "nts-ke", ke.Serve)
	srv, err := ntp.NewServer(ntp.Config{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Workers: 1, NTS: ke.Processor()},
		hostClock{}, status, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	testbin.Serve(t, "ntp", srv.Serve)
	return &ourServer{ke: ke, ntp: srv, ca: ca}
}

func syncedStatus() ntp.Status {
	return ntp.Status{Synchronized: true, Stratum: 1, RefID: [4]byte{'G', 'P', 'S', 0},
		RefTime: time.Now().Add(-time.Second), RootDispersion: 20 * time.Microsecond}
}

// udpProxy forwards datagrams between one client and upstream, passing
// each reply through mangle first while tamper is set.
type udpProxy struct {
	conn     *net.UDPConn
	upstream *net.UDPAddr
	tamper   atomic.Bool
	mangle   func([]byte)
	wg       sync.WaitGroup
	tampered atomic.Int64
}

func startUDPProxy(t testing.TB, upstream string, mangle func([]byte)) *udpProxy {
	t.Helper()
	up, err := net.ResolveUDPAddr("udp", upstream)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{conn: conn, upstream: up, mangle: mangle}
	p.wg.Add(1)
	go p.run()
	t.Cleanup(func() {
		_ = conn.Close()
		p.wg.Wait()
	})
	return p
}

func (p *udpProxy) addr() string { return p.conn.LocalAddr().String() }

// run relays each request on a fresh upstream socket and the reply back.
func (p *udpProxy) run() {
	defer p.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		req := append([]byte(nil), buf[:n]...)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			up, err := net.DialUDP("udp", nil, p.upstream)
			if err != nil {
				return
			}
			defer up.Close()
			if _, err := up.Write(req); err != nil {
				return
			}
			_ = up.SetReadDeadline(time.Now().Add(2 * time.Second))
			rb := make([]byte, 4096)
			m, err := up.Read(rb)
			if err != nil {
				return
			}
			if p.tamper.Load() {
				p.mangle(rb[:m])
				p.tampered.Add(1)
			}
			_, _ = p.conn.WriteToUDP(rb[:m], from)
		}()
	}
}
