package netsvc

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc/mtls"
	"github.com/aunsorm/timenode/netsvc/mtls/mtlstest"
	"github.com/aunsorm/timenode/timing"
)

// testTLS is a service CA, a server certificate for 127.0.0.1 and an
// allowed client.
type testTLS struct {
	mgr    *mtls.Manager
	roots  *x509.CertPool
	client tls.Certificate
}

func newTestTLS(t *testing.T) *testTLS {
	t.Helper()
	now := time.Now()
	p := mtlstest.New(t)
	ca := p.CA("service CA", now.Add(-time.Hour), now.Add(24*time.Hour))
	srv := p.Leaf("timenode", []string{"localhost", "127.0.0.1"}, ca, x509.ExtKeyUsageServerAuth, now.Add(-time.Hour), now.Add(24*time.Hour))
	cli := p.Leaf("gateway.security.svc", []string{"gateway.security.svc"}, ca, x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(24*time.Hour))
	certFile, keyFile := p.Write("server", srv)
	caFile, _ := p.Write("ca", ca)
	m, err := mtls.Load(mtls.Files{Cert: certFile, Key: keyFile, ClientCA: caFile}, now)
	if err != nil {
		t.Fatal(err)
	}
	return &testTLS{mgr: mtls.NewManager(m, mtls.Policy{Allowed: []string{"gateway.security.svc"}}),
		roots: mtlstest.Pool(ca), client: cli.TLS()}
}

// clientConfig presents the client certificate when withCert.
func (tt *testTLS) clientConfig(withCert bool, protos ...string) *tls.Config {
	c := &tls.Config{RootCAs: tt.roots, ServerName: "localhost", MinVersion: tls.VersionTLS13, NextProtos: protos}
	if withCert {
		c.Certificates = []tls.Certificate{tt.client}
	}
	return c
}

// okHandler answers 200 to everything the gate lets through.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })

// serveTLS starts an HTTPS listener (behind ClientGate) and a metrics
// listener on loopback; it returns them.
func serveTLS(t *testing.T, tt *testTLS, adm Admission) (https, metrics *Listener) {
	t.Helper()
	clk := clocktest.NewManual(time.Now())
	m := NewMetrics(clk, fixedTiming{}, nil)
	https = &Listener{Name: "https", Addr: "127.0.0.1:0", TLS: tt.mgr.ServerConfig(),
		Handler: ClientGate(okHandler, tt.mgr.ClientCertRequired), Admission: adm}
	metrics = &Listener{Name: "metrics", Addr: "127.0.0.1:0", Handler: m.Handler()}
	ls := []*Listener{https, metrics}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := Listen(ls, log); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ls, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return https, metrics
}

type fixedTiming struct{}

func (fixedTiming) Status() *timing.Status { return &timing.Status{State: timing.Locked} }

// dialFrom opens a TCP connection from a loopback source address
// (127.0.0.n: all of 127/8 is the loopback interface on Linux).
func dialFrom(n int, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(n>>8), byte(n))}}
	return d.Dial("tcp", addr)
}

// floodDescriptors is what TestFloodDoesNotLockOutCertifiedClients holds
// at once: both ends of its 4,304 flood connections, in one process, plus
// headroom for the listener, the certified clients and the runtime.
const floodDescriptors = 2*4304 + 1000

// needDescriptors raises the soft descriptor limit to n, within the hard
// limit, and skips naming the limit when the environment allows fewer:
// that is about the machine, and a test that runs out of descriptors
// half-way would report a defect that is not there.
func needDescriptors(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("read RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("RLIMIT_NOFILE hard limit is %d; this test needs %d descriptors", lim.Max, n)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raise RLIMIT_NOFILE to %d: %v", n, err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// get sends one HTTP/1.1 request on c and reads the answer's status.
func get(c net.Conn, path string, hdr ...string) (int, error) {
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n" + strings.Join(hdr, "") + "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = c.SetDeadline(time.Time{})
	return resp.StatusCode, nil
}

const gatewayHeader = MeshHeader + ": gateway\r\n"

// TestFloodDoesNotLockOutCertifiedClients fills the HTTPS listener, at
// its default limits, with more connections than it takes: TCP that never
// starts a handshake, and anonymous TLS connections that fetched the
// gateway's /health and idle. A client with a certificate on a new
// connection must still be served at once, and so must the gateway's
// anonymous check. (Before admission, the cap blocked Accept and both
// waited for the flood's timeouts.)
func TestFloodDoesNotLockOutCertifiedClients(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 4,300 connections")
	}
	needDescriptors(t, floodDescriptors)
	tt := newTestTLS(t)
	https, _ := serveTLS(t, tt, Admission{})
	addr := https.Bound().String()

	var mu sync.Mutex
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	// 20 sources of anonymous gateway checks that stay connected.
	for src := 2; src < 22; src++ {
		wg.Go(func() {
			for range 4 {
				raw, err := dialFrom(src, addr)
				if err != nil {
					continue
				}
				c := tls.Client(raw, tt.clientConfig(false))
				if code, err := get(c, "/health", gatewayHeader); err != nil || code != http.StatusOK {
					t.Errorf("anonymous gateway check before the flood: %d %v", code, err)
				}
				mu.Lock()
				flood = append(flood, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// 128 sources of silent TCP, 33 each: 4,224 connections.
	for src := 100; src < 228; src++ {
		wg.Go(func() {
			for range 33 {
				if c, err := dialFrom(src, addr); err == nil {
					mu.Lock()
					flood = append(flood, c)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()

	start := time.Now()
	client := &http.Client{Timeout: testbin.Wait(2 * time.Second), Transport: &http.Transport{
		TLSClientConfig: tt.clientConfig(true), DisableKeepAlives: true}}
	for i := range 5 {
		resp, err := client.Get("https://" + addr + "/attestation")
		if err != nil {
			t.Fatalf("certified client, request %d under the flood: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("certified client: %d", resp.StatusCode)
		}
	}
	raw, err := dialFrom(1, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if code, err := get(tls.Client(raw, tt.clientConfig(false)), "/health", gatewayHeader); err != nil || code != http.StatusOK {
		t.Fatalf("anonymous gateway check under the flood: %d %v", code, err)
	}
	t.Logf("5 certified requests and a gateway check in %v under %d flood connections", time.Since(start), len(flood))

	st := https.adm.stats()
	if st.Handshake+st.Anonymous > MaxUnauthenticatedConns {
		t.Errorf("%d handshakes and %d anonymous connections: over the limit of %d", st.Handshake, st.Anonymous, MaxUnauthenticatedConns)
	}
	if st.Evicted["unauthenticated_limit"] == 0 {
		t.Errorf("evictions %v: want some for the unauthenticated limit", st.Evicted)
	}
}

// TestAnonymousConnectionsTimeOut: what holds a slot without a client
// certificate lets go within seconds; a certified client keeps its
// connection for the long idle timeout.
func TestAnonymousConnectionsTimeOut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the default timeouts")
	}
	tt := newTestTLS(t)
	https, _ := serveTLS(t, tt, Admission{})
	addr := https.Bound().String()
	// closedWithin reports how long c stayed open, failing past limit.
	closedWithin := func(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(limit + time.Second))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("still open after %v, want closed within %v", time.Since(start), limit)
		}
		return time.Since(start)
	}
	t.Run("TCP that never starts a handshake", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		t.Logf("closed after %v", closedWithin(t, c, HandshakeTimeout+200*time.Millisecond))
	})
	t.Run("anonymous gateway check left idle", func(t *testing.T) {
		t.Parallel()
		c, err := tls.Dial("tcp", addr, tt.clientConfig(false))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if code, err := get(c, "/health", gatewayHeader); err != nil || code != http.StatusOK {
			t.Fatalf("/health: %d %v", code, err)
		}
		t.Logf("closed after %v", closedWithin(t, c, AnonymousIdleTimeout+200*time.Millisecond))
	})
	t.Run("anonymous 401 left idle", func(t *testing.T) {
		t.Parallel()
		c, err := tls.Dial("tcp", addr, tt.clientConfig(false))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if code, err := get(c, "/attestation"); err != nil || code != http.StatusUnauthorized {
			t.Fatalf("/attestation without a certificate: %d %v", code, err)
		}
		closedWithin(t, c, AnonymousIdleTimeout+200*time.Millisecond)
	})
	t.Run("certified client keeps its connection", func(t *testing.T) {
		t.Parallel()
		c, err := tls.Dial("tcp", addr, tt.clientConfig(true))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if code, err := get(c, "/attestation"); err != nil || code != http.StatusOK {
			t.Fatalf("first request: %d %v", code, err)
		}
		time.Sleep(AnonymousIdleTimeout + time.Second)
		if code, err := get(c, "/attestation"); err != nil || code != http.StatusOK {
			t.Fatalf("request after %v idle: %d %v", AnonymousIdleTimeout+time.Second, code, err)
		}
	})
}

// TestHTTP2Limits reads the SETTINGS each kind of client is sent: few
// streams and small windows without a certificate, more streams with one,
// never Go's default of 250 streams with 1 MiB windows.
func TestHTTP2Limits(t *testing.T) {
	tt := newTestTLS(t)
	https, _ := serveTLS(t, tt, Admission{})
	tests := []struct {
		name        string
		cert        bool
		wantStreams uint32
	}{
		{"anonymous", false, anonymousMaxStreams},
		{"authenticated", true, authenticatedMaxStreams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tls.Dial("tcp", https.Bound().String(), tt.clientConfig(tc.cert, "h2"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
				t.Fatalf("ALPN %q, want h2", p)
			}
			settings := readH2Settings(t, c)
			if got := settings[0x3]; got != tc.wantStreams {
				t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want %d", got, tc.wantStreams)
			}
			if got := settings[0x4]; got != h2ReceiveWindowStream {
				t.Errorf("SETTINGS_INITIAL_WINDOW_SIZE %d, want %d", got, h2ReceiveWindowStream)
			}
		})
	}
}

// readH2Settings sends the client preface and returns the server's first
// SETTINGS frame (RFC 9113 §6.5) as id → value.
func readH2Settings(t *testing.T, c net.Conn) map[uint16]uint32 {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	var hdr [9]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	if hdr[3] != 0x4 || n%6 != 0 {
		t.Fatalf("first frame type %d length %d, want SETTINGS", hdr[3], n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c, payload); err != nil {
		t.Fatal(err)
	}
	out := map[uint16]uint32{}
	for i := 0; i < n; i += 6 {
		out[binary.BigEndian.Uint16(payload[i:])] = binary.BigEndian.Uint32(payload[i+2:])
	}
	return out
}

// TestAdmissionMetrics: Listen exports every listener's admission
// figures through the Metrics one of them serves.
func TestAdmissionMetrics(t *testing.T) {
	tt := newTestTLS(t)
	https, metrics := serveTLS(t, tt, Admission{})
	c, err := tls.Dial("tcp", https.Bound().String(), tt.clientConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code, err := get(c, "/attestation"); err != nil || code != http.StatusOK {
		t.Fatalf("%d %v", code, err)
	}
	w := httptest.NewRecorder()
	metrics.Handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`timenode_connections{class="authenticated",listener="https"} 1`,
		`timenode_connections_admitted_total{class="authenticated",listener="https"} 1`,
		`timenode_connections_evicted_total{listener="https",reason="source_limit"} 0`,
		`timenode_connections_handshake_failed_total{listener="https",reason="timeout"} 0`,
		`timenode_connections_refused_total{listener="metrics"} 0`,
	} {
		if !strings.Contains(w.Body.String(), want+"\n") {
			t.Errorf("no %s in the exposition", want)
		}
	}
}
