package mtls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/mtls/mtlstest"
)

// serve accepts TLS connections with mgr's config and completes handshakes.
func serve(t *testing.T, mgr *Manager) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", mgr.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				_, _ = io.WriteString(c, "ok")
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(addr string, roots *x509.CertPool, cert *tls.Certificate, cache tls.ClientSessionCache) (*tls.ConnectionState, error) {
	conf := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS13, ClientSessionCache: cache}
	if cert != nil {
		// Send the certificate whatever CAs the server names, as curl and
		// openssl do (crypto/tls would send none for a foreign CA).
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// TLS 1.3 client auth failures surface on the first read.
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, err
	}
	st := c.ConnectionState()
	return &st, nil
}

func TestClientPolicy(t *testing.T) {
	w := newWorld(t)
	m, err := Load(w.files, w.now)
	if err != nil {
		t.Fatal(err)
	}
	var ok, bad int
	var logs bytes.Buffer
	mgr := NewManager(m, Policy{Allowed: []string{"gateway.security.svc", "kms.security.svc"}, RequireClientCert: true})
	mgr.Log = slog.New(slog.NewTextHandler(&logs, nil))
	mgr.OnHandshake = func(good bool) {
		if good {
			ok++
		} else {
			bad++
		}
	}
	addr := serve(t, mgr)
	roots := x509.NewCertPool()
	roots.AddCert(w.ca.Cert)
	hour, day := time.Hour, 24*time.Hour
	tests := []struct {
		name   string
		client *mtlstest.Issued
		ok     bool
	}{
		{"allowed gateway", w.client("gw", []string{"gateway.security.svc"}, w.ca, w.now.Add(-hour), w.now.Add(day)), true},
		{"allowed kms", w.client("kms", []string{"kms.security.svc"}, w.ca, w.now.Add(-hour), w.now.Add(day)), true},
		{"SAN not on allow-list", w.client("intruder", []string{"intruder.security.svc"}, w.ca, w.now.Add(-hour), w.now.Add(day)), false},
		{"other CA", w.client("gw", []string{"gateway.security.svc"}, w.otherCA, w.now.Add(-hour), w.now.Add(day)), false},
		{"expired", w.client("gw", []string{"gateway.security.svc"}, w.ca, w.now.Add(-2*day), w.now.Add(-day)), false},
		{"no certificate", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cert *tls.Certificate
			if tc.client != nil {
				c := tc.client.TLS()
				cert = &c
			}
			_, err := dial(addr, roots, cert, nil)
			if (err == nil) != tc.ok {
				t.Fatalf("handshake err %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if att, done := mgr.HandshakeStats(); att != uint64(len(tests)) || done != 2 {
		t.Errorf("handshake stats %d attempts, %d completed; want %d, 2", att, done, len(tests))
	}
	if ok != 2 || bad != 4 {
		t.Errorf("OnHandshake saw %d good, %d bad; want 2, 4", ok, bad)
	}
	// Every refusal is counted and logged at WARN with its reason.
	want := map[string]uint64{ReasonNotAllowed: 1, ReasonUnknownCA: 1, ReasonExpired: 1, ReasonNoCertificate: 1, ReasonOther: 0}
	if got := mgr.Failures(); !maps.Equal(got, want) {
		t.Errorf("failures %v, want %v", got, want)
	}
	for _, reason := range []string{ReasonNotAllowed, ReasonUnknownCA, ReasonExpired, ReasonNoCertificate} {
		if !strings.Contains(logs.String(), "level=WARN msg=\"client handshake refused\" reason="+reason+" remote=127.0.0.1:") {
			t.Errorf("no WARN line for %s in:\n%s", reason, logs.String())
		}
	}
}

// TestRefusalLogIsRateLimited: one line per reason per LogEvery; the next
// line reports how many were left out.
func TestRefusalLogIsRateLimited(t *testing.T) {
	var logs bytes.Buffer
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mgr := &Manager{Log: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }}
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}
	for range 5 {
		mgr.refused(ErrNotAllowed, remote)
		now = now.Add(time.Second)
	}
	mgr.refused(ErrNoClientCert, remote) // another reason: its own budget
	now = now.Add(LogEvery)
	mgr.refused(ErrNotAllowed, remote)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), logs.String())
	}
	if !strings.Contains(lines[2], "reason=not_allowed") || !strings.Contains(lines[2], "suppressed_since_last=4") {
		t.Errorf("third line %q, want not_allowed with 4 suppressed", lines[2])
	}
	if got := mgr.Failures()[ReasonNotAllowed]; got != 6 {
		t.Errorf("not_allowed counted %d, want 6 (suppressed lines still count)", got)
	}
}

func TestSwapKeepsServingAndAppliesToNewHandshakes(t *testing.T) {
	w := newWorld(t)
	m, err := Load(w.files, w.now)
	if err != nil {
		t.Fatal(err)
	}
	mgr := NewManager(m, Policy{Allowed: []string{"gateway.security.svc"}})
	addr := serve(t, mgr)
	roots := x509.NewCertPool()
	roots.AddCert(w.ca.Cert)
	gw := w.client("gw", []string{"gateway.security.svc"}, w.ca, w.now.Add(-time.Hour), w.now.Add(time.Hour)).TLS()
	cache := tls.NewLRUClientSessionCache(4)
	st, err := dial(addr, roots, &gw, cache)
	if err != nil {
		t.Fatal(err)
	}
	first := st.PeerCertificates[0].SerialNumber

	// Rotate the server certificate and drop the gateway from the list.
	next := w.serverCert("timenode", w.now.Add(-time.Hour), w.now.Add(90*24*time.Hour))
	cert, key := w.p.Write("server2", next)
	m2, err := Load(Files{Cert: cert, Key: key, ClientCA: w.caPath}, w.now)
	if err != nil {
		t.Fatal(err)
	}
	mgr.Swap(m2, Policy{Allowed: []string{"kms.security.svc"}})
	// A resumed session must not bypass the new allow-list.
	if _, err := dial(addr, roots, &gw, cache); err == nil {
		t.Fatal("resumed session of a client removed from the allow-list was accepted")
	}
	kms := w.client("kms", []string{"kms.security.svc"}, w.ca, w.now.Add(-time.Hour), w.now.Add(time.Hour)).TLS()
	st, err = dial(addr, roots, &kms, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.PeerCertificates[0].SerialNumber.Cmp(first) == 0 {
		t.Fatal("new handshake still got the old server certificate")
	}
}

func TestLoadRefusesBadMaterial(t *testing.T) {
	w := newWorld(t)
	expired := w.serverCert("old", w.now.Add(-48*time.Hour), w.now.Add(-time.Hour))
	expCert, expKey := w.p.Write("expired", expired)
	other := w.serverCert("x", w.now.Add(-time.Hour), w.now.Add(time.Hour))
	_, otherKey := w.p.Write("other", other)
	garbage := w.p.Dir + "/garbage.pem"
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	leafAsCA, _ := w.p.Write("leafca", other)
	oldCA := w.p.CA("old CA", w.now.Add(-400*24*time.Hour), w.now.Add(-time.Hour))
	olderCA := w.p.CA("older CA", w.now.Add(-800*24*time.Hour), w.now.Add(-400*24*time.Hour))
	futureCA := w.p.CA("future CA", w.now.Add(time.Hour), w.now.Add(400*24*time.Hour))
	expiredBundle := bundle(t, w.p.Dir+"/expired-cas.pem", oldCA, olderCA)
	futureBundle := bundle(t, w.p.Dir+"/future-cas.pem", futureCA)
	tests := []struct {
		name string
		f    Files
		want error
	}{
		{"expired", Files{Cert: expCert, Key: expKey}, ErrExpired},
		{"key mismatch", Files{Cert: w.files.Cert, Key: otherKey}, ErrKeyMismatch},
		{"garbage PEM", Files{Cert: garbage, Key: w.files.Key}, ErrNoCert},
		{"missing file", Files{Cert: w.p.Dir + "/nope.crt", Key: w.files.Key}, os.ErrNotExist},
		{"leaf as client CA", Files{Cert: w.files.Cert, Key: w.files.Key, ClientCA: leafAsCA}, nil},
		// Every mTLS client would fail while /health stays 200.
		{"client CA bundle of expired CAs only", Files{Cert: w.files.Cert, Key: w.files.Key, ClientCA: expiredBundle}, ErrExpired},
		{"client CA bundle not valid yet", Files{Cert: w.files.Cert, Key: w.files.Key, ClientCA: futureBundle}, ErrNotYetValid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.f, w.now)
			if err == nil {
				t.Fatal("bad material loaded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
}

// TestLoadWarnsOfExpiredCAsBesideValidOnes: a bundle that still holds a
// valid CA loads (clients of that CA keep working) and says which CAs
// have expired.
func TestLoadWarnsOfExpiredCAsBesideValidOnes(t *testing.T) {
	w := newWorld(t)
	oldCA := w.p.CA("old CA", w.now.Add(-400*24*time.Hour), w.now.Add(-time.Hour))
	f := w.files
	f.ClientCA = bundle(t, w.p.Dir+"/mixed.pem", oldCA, w.ca)
	m, err := Load(f, w.now)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.CAs) != 2 || len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], `"old CA"`) {
		t.Fatalf("CAs %d, warnings %q; want 2 CAs and one warning naming the old CA", len(m.CAs), m.Warnings)
	}
}

// bundle writes the CA certificates into one PEM file.
func bundle(t *testing.T, path string, cas ...*mtlstest.Issued) string {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
