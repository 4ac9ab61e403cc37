package ntsclient

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc/mtls/mtlstest"
	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts"
)

// testCA is a throwaway CA with one server certificate for 127.0.0.1 and
// localhost, valid from an hour before the test's clock to a day after
// (so a future-dated guest's run passes as well as today's).
type testCA struct {
	roots           *x509.CertPool
	server          tls.Certificate
	certPEM, keyPEM string // the server's certificate and key, PEM files
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	now := time.Now()
	pki := mtlstest.New(t)
	ca := pki.CA(name+" test CA", now.Add(-time.Hour), now.Add(24*time.Hour))
	srv := pki.Leaf("localhost", []string{"localhost", "127.0.0.1"}, ca, x509.ExtKeyUsageServerAuth, now.Add(-time.Hour), now.Add(24*time.Hour))
	c := &testCA{roots: mtlstest.Pool(ca), server: srv.TLS()}
	c.certPEM, c.keyPEM = pki.Write("server", srv)
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
