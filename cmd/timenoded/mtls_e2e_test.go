package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/mtls/mtlstest"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
)

// servicePKI is the service CA of SPEC.md §6 with the node's server
// certificate and clients, good and bad.
type servicePKI struct {
	p                          *mtlstest.PKI
	ca, other                  *mtlstest.Issued
	caFile, certFile, keyFile  string
	gateway, expired, stranger *mtlstest.Issued
	foreign                    *mtlstest.Issued // signed by another CA
	gwCert, gwKey              string
}

func newServicePKI(t *testing.T) *servicePKI {
	now := time.Now()
	s := &servicePKI{p: mtlstest.New(t)}
	s.ca = s.p.CA("aunsorm service CA", now.Add(-time.Hour), now.Add(365*24*time.Hour))
	s.other = s.p.CA("someone else's CA", now.Add(-time.Hour), now.Add(365*24*time.Hour))
	s.caFile, _ = s.p.Write("service-ca", s.ca)
	s.rotateServer(t, now.Add(60*24*time.Hour))
	day := 24 * time.Hour
	client := func(cn string, ca *mtlstest.Issued, from, to time.Time) *mtlstest.Issued {
		return s.p.Leaf(cn, []string{cn}, ca, x509.ExtKeyUsageClientAuth, from, to)
	}
	s.gateway = client("gateway.security.svc", s.ca, now.Add(-time.Hour), now.Add(day))
	s.expired = client("gateway.security.svc", s.ca, now.Add(-2*day), now.Add(-day))
	s.stranger = client("intruder.security.svc", s.ca, now.Add(-time.Hour), now.Add(day))
	s.foreign = client("gateway.security.svc", s.other, now.Add(-time.Hour), now.Add(day))
	s.gwCert, s.gwKey = s.p.Write("gateway", s.gateway)
	return s
}

// rotateServer writes a new server certificate valid until notAfter.
func (s *servicePKI) rotateServer(t *testing.T, notAfter time.Time) *mtlstest.Issued {
	leaf := s.p.Leaf("timenode", []string{"localhost", "127.0.0.1"}, s.ca, x509.ExtKeyUsageServerAuth, time.Now().Add(-time.Minute), notAfter)
	s.certFile, s.keyFile = s.p.Write("server", leaf)
	return leaf
}

func (s *servicePKI) options() simOptions {
	return simOptions{
		args: []string{"--tls-cert", s.certFile, "--tls-key", s.keyFile, "--client-ca", s.caFile,
			"--mtls-allow", "gateway.security.svc,kms.security.svc"},
		clientCert: s.gwCert, clientKey: s.gwKey,
	}
}

func TestMTLSHandshakesWithOpenSSLAndGo(t *testing.T) {
	pki := newServicePKI(t)
	d := startSim(t, pki.options())
	d.waitHealthy(t, 60*time.Second)
	addr := d.endpoints["https"]

	t.Run("50 openssl s_client handshakes", func(t *testing.T) {
		openssl, err := exec.LookPath("openssl")
		if err != nil {
			missingTool(t, "openssl", "openssl")
		}
		for i := 0; i < 50; i++ {
			cmd := exec.Command(openssl, "s_client", "-connect", addr, "-tls1_3", "-quiet", "-verify_return_error",
				"-CAfile", pki.caFile, "-cert", pki.gwCert, "-key", pki.gwKey, "-servername", "localhost")
			cmd.Stdin = strings.NewReader("GET /keys HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "HTTP/1.1 200") {
				t.Fatalf("handshake %d: %v\n%s", i, err, out)
			}
		}
	})
	t.Run("openssl with a certificate from another CA", func(t *testing.T) {
		if _, err := exec.LookPath("openssl"); err != nil {
			missingTool(t, "openssl", "openssl")
		}
		foreignCert, foreignKey := pki.p.Write("foreign", pki.foreign)
		cmd := exec.Command("openssl", "s_client", "-connect", addr, "-tls1_3", "-quiet",
			"-CAfile", pki.caFile, "-cert", foreignCert, "-key", foreignKey, "-servername", "localhost")
		cmd.Stdin = strings.NewReader("GET /keys HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), "HTTP/1.1 200") {
			t.Fatalf("a client certificate from another CA got an answer:\n%s", out)
		}
	})
	t.Run("50 Go handshakes", func(t *testing.T) {
		gw := pki.gateway.TLS()
		for i := 0; i < 50; i++ {
			if code, err := fetchOnce(addr, pki.ca, &gw, "/keys"); err != nil || code != http.StatusOK {
				t.Fatalf("handshake %d: code %d, %v", i, code, err)
			}
		}
	})
	t.Run("bad clients are refused", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cert *mtlstest.Issued
		}{{"another CA", pki.foreign}, {"expired", pki.expired}, {"SAN not on the allow-list", pki.stranger}} {
			c := tc.cert.TLS()
			// Refused at the handshake, or (Go's client withholds a
			// certificate that does not chain to a CA the server names)
			// served as anonymous: 401.
			if code, err := fetchOnce(addr, pki.ca, &c, "/attestation"); err == nil && code != http.StatusUnauthorized {
				t.Errorf("%s: request answered %d, want the handshake refused or 401", tc.name, code)
			}
		}
		if code, err := fetchOnce(addr, pki.ca, nil, "/attestation"); err != nil || code != http.StatusUnauthorized {
			t.Errorf("no certificate: code %d, err %v; want 401", code, err)
		}
	})
	// Each refusal is counted by reason and logged at WARN.
	for _, reason := range []string{"expired", "not_allowed"} {
		if n := d.metric(t, `mtls_handshake_failures_total{reason="`+reason+`"}`); n < 1 {
			t.Errorf("mtls_handshake_failures_total{reason=%q} = %v, want at least 1", reason, n)
		}
		if !strings.Contains(d.log.String(), `level=WARN msg="client handshake refused" component=tls reason=`+reason) {
			t.Errorf("no WARN line for a refused %s client in the daemon log", reason)
		}
	}
	if r := d.metric(t, "mtls_handshake_success_ratio"); r <= 0 || r >= 1 {
		t.Errorf("mtls_handshake_success_ratio %v, want between 0 and 1 after good and refused handshakes", r)
	}
}

// fetchOnce makes one request on a fresh connection.
func fetchOnce(addr string, ca *mtlstest.Issued, cert *tls.Certificate, path string) (int, error) {
	conf := &tls.Config{RootCAs: mtlstest.Pool(ca), MinVersion: tls.VersionTLS13, ServerName: "localhost"}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}
	resp, err := c.Get("https://" + addr + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func missingTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed (Debian package %s); CI must install it", tool, pkg)
	}
	t.Skipf("%s not installed: apt-get install %s", tool, pkg)
}

// TestReloadUnderLoad rotates the server certificate ten times (and tries
// one broken certificate) while clients fetch nonce-bound attestations over
// fresh, resumed and kept-alive (HTTP/1.1 and HTTP/2) connections: no
// request may fail.
func TestReloadUnderLoad(t *testing.T) {
	pki := newServicePKI(t)
	d := startSim(t, pki.options())
	d.waitHealthy(t, 60*time.Second)
	addr := d.endpoints["https"]
	trusted := newKeyRing(fetchKeys(t, d))

	ctx, cancel := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		conf := &tls.Config{RootCAs: mtlstest.Pool(pki.ca), MinVersion: tls.VersionTLS13, ServerName: "localhost",
			Certificates: []tls.Certificate{pki.gateway.TLS()}, ClientSessionCache: tls.NewLRUClientSessionCache(8)}
		// Workers 0-1 open a connection per request (resuming sessions),
		// 2-3 keep theirs alive across the reloads: 2 over HTTP/1.1, 3
		// over HTTP/2, as signer/client does.
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf,
			DisableKeepAlives: w < 2, ForceAttemptHTTP2: w == 3}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := fetchVerifiedFollowing(client, addr, trusted); err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	servedSerial := func() string {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: mtlstest.Pool(pki.ca), ServerName: "localhost",
			Certificates: []tls.Certificate{pki.gateway.TLS()}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	waitSerial := func(want string) {
		deadline := time.Now().Add(10 * time.Second)
		for servedSerial() != want {
			if time.Now().After(deadline) {
				t.Fatalf("server still serves an old certificate, want serial %s", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	keyDir := filepath.Join(d.endpoints["state_dir"], "keys")
	for i := 0; i < 10; i++ {
		leaf := pki.rotateServer(t, time.Now().Add(time.Duration(30+i)*24*time.Hour))
		before := keyIDs(fetchKeys(t, d))
		if err := keyfile.Generate(keyDir, rand.Reader, nil, true); err != nil {
			t.Fatal(err)
		}
		if err := d.proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitSerial(leaf.Cert.SerialNumber.String())
		for deadline := time.Now().Add(10 * time.Second); ; {
			// Every key set published is kept, as a client that polls /keys
			// keeps what it saw: an attestation signed just before the next
			// rotation then still verifies after it.
			keys := fetchKeys(t, d)
			if keyIDs(keys) != before {
				trusted.add(keys)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("rotation %d: /keys still publishes %s", i, before)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(150 * time.Millisecond)
	}
	// A broken certificate is refused and the last good one keeps serving.
	last := servedSerial()
	if err := os.WriteFile(pki.certFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.metric(t, "timenode_reload_failures_total") < 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()

	if got := servedSerial(); got != last {
		t.Errorf("after a broken reload the server serves serial %s, want the last good %s", got, last)
	}
	if f := d.metric(t, "timenode_reload_failures_total"); f != 1 {
		t.Errorf("timenode_reload_failures_total %v, want 1", f)
	}
	if r := d.metric(t, "mtls_rotation_events_total"); r != 20 {
		t.Errorf("mtls_rotation_events_total %v, want 20 (10 certificates, 10 key sets)", r)
	}
	if !strings.Contains(d.log.String(), "reload refused; nothing changed") {
		t.Error("the refused reload was not logged")
	}
	t.Logf("reload under load: %d attestations verified, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() < 20 {
		t.Fatalf("%d failed requests (first: %v), %d good; want 0 failed", failed.Load(), firstErr.Load(), ok.Load())
	}
}

func fetchKeys(t *testing.T, d *simDaemon) []signer.PublicKey {
	t.Helper()
	code, body := d.get(t, "/keys")
	if code != http.StatusOK {
		t.Fatalf("/keys: %d", code)
	}
	var doc signer.KeysDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	keys, err := doc.PublicKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// keyRing is what a client that follows rotations trusts: every key it
// has seen published (each still bounded by its own validity window).
type keyRing struct {
	mu   sync.Mutex
	keys map[string]signer.PublicKey
}

func newKeyRing(keys []signer.PublicKey) *keyRing {
	r := &keyRing{keys: map[string]signer.PublicKey{}}
	r.add(keys)
	return r
}

func (r *keyRing) add(keys []signer.PublicKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		r.keys[k.ID] = k
	}
}

func (r *keyRing) list() []signer.PublicKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]signer.PublicKey, 0, len(r.keys))
	for _, k := range r.keys {
		out = append(out, k)
	}
	return out
}

// fetchVerifiedFollowing gets one nonce-bound attestation and verifies it,
// refetching /keys once when it names a key not seen yet, as a client
// does across a rotation.
func fetchVerifiedFollowing(c *http.Client, addr string, ring *keyRing) error {
	att, nonce, err := fetchAttestation(c, addr)
	if err != nil {
		return err
	}
	err = signer.NewVerifier(ring.list()).Verify(att, time.Now(), nonce)
	if !errors.Is(err, signer.ErrUnknownKey) {
		return err
	}
	resp, err := c.Get("https://" + addr + "/keys")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var doc signer.KeysDocument
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return err
	}
	keys, err := doc.PublicKeys()
	if err != nil {
		return err
	}
	ring.add(keys)
	return signer.NewVerifier(ring.list()).Verify(att, time.Now(), nonce)
}

// fetchVerified gets one nonce-bound attestation and verifies it.
func fetchVerified(c *http.Client, addr string, keys []signer.PublicKey) error {
	att, nonce, err := fetchAttestation(c, addr)
	if err != nil {
		return err
	}
	return signer.NewVerifier(keys).Verify(att, time.Now(), nonce)
}

// fetchAttestation gets one attestation bound to a fresh random nonce.
func fetchAttestation(c *http.Client, addr string) (*signer.Attestation, []byte, error) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	resp, err := c.Get("https://" + addr + "/attestation?nonce=" + hex.EncodeToString(nonce))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var att signer.Attestation
	if err := json.Unmarshal(body, &att); err != nil {
		return nil, nil, err
	}
	return &att, nonce, nil
}

// TestAbusiveClientsDoNotStarveGoodOnes holds slow-loris connections open,
// sends oversized headers and floods handshakes with bad certificates
// while a good client keeps fetching attestations.
func TestAbusiveClientsDoNotStarveGoodOnes(t *testing.T) {
	pki := newServicePKI(t)
	d := startSim(t, pki.options())
	d.waitHealthy(t, 60*time.Second)
	addr := d.endpoints["https"]
	keys := fetchKeys(t, d)

	var slow []net.Conn
	defer func() {
		for _, c := range slow {
			c.Close()
		}
	}()
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte{0x16, 0x03}) // the first bytes of a ClientHello, then nothing
		slow = append(slow, c)
	}
	stop := make(chan struct{})
	var flood sync.WaitGroup
	for w := 0; w < 4; w++ {
		flood.Add(1)
		go func() {
			defer flood.Done()
			bad := pki.foreign.TLS()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = fetchOnce(addr, pki.ca, &bad, "/attestation")
			}
		}()
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: mtlstest.Pool(pki.ca), ServerName: "localhost", Certificates: []tls.Certificate{pki.gateway.TLS()}}}}
	for i := 0; i < 30; i++ {
		if err := fetchVerified(client, addr, keys); err != nil {
			// Say whether admission control cut it: a good client must
			// never be the one evicted.
			t.Fatalf("good client, request %d, under abuse: %v (evicted so far: %v by the source limit, %v by the unauthenticated limit)",
				i, err, d.metric(t, `timenode_connections_evicted_total{listener="https",reason="source_limit"}`),
				d.metric(t, `timenode_connections_evicted_total{listener="https",reason="unauthenticated_limit"}`))
		}
	}
	close(stop)
	flood.Wait()

	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/health", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 64<<10))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", resp.StatusCode)
	}
	// The slow-loris connections are cut by the handshake timeout.
	slow[0].SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := slow[0].Read(make([]byte, 1)); err == nil {
		t.Log("server answered the partial ClientHello with an alert")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("a slow-loris connection was still open after 15 s")
	}
}
