package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

// helloBody is the ceiling's static response: 1 KiB. helloBodyAtt is as
// large as an attestation (5 KiB, most of it the ML-DSA-65 signature), to
// tell the cost of signing from the cost of carrying the signature.
var (
	helloBody    = bytes.Repeat([]byte("hello, timenode\n"), 64)
	helloBodyAtt = bytes.Repeat([]byte("hello, timenode\n"), 320)
)

// helloServer is the ceiling: the cheapest handler behind the same TLS
// shape as the daemon's HTTPS listener.
type helloServer struct {
	addr string
	srv  *http.Server
}

// startHello serves GET /hello on a free loopback port with the daemon's
// server certificate, TLS 1.3 only, client certificates verified against
// caFile (asked for, checked again in VerifyConnection like the daemon
// does, and required by the handler), and the daemon's server limits.
func startHello(certFile, keyFile, caFile string) (*helloServer, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("servebench: hello server certificate: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("servebench: no certificate in %s", caFile)
	}
	inner := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
		ClientCAs:    pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
	outer := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return inner, nil },
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	static := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
				http.Error(w, "client certificate required", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(body)
		}
	}
	mux.HandleFunc("GET /hello", static(helloBody))
	mux.HandleFunc("GET /hello-5k", static(helloBodyAtt))
	h := &helloServer{addr: ln.Addr().String(), srv: &http.Server{
		Handler:           http.MaxBytesHandler(mux, 1<<10),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}}
	go func() {
		if err := h.srv.Serve(tls.NewListener(ln, outer)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "servebench: hello server:", err)
		}
	}()
	return h, nil
}

func (h *helloServer) close() { _ = h.srv.Close() }
