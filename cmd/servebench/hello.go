package main

import (
	"bufio"
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
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/child"
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

// helloChildFlag makes servebench the hello server itself: the ceiling
// runs in a process of its own, as the daemon does, so that neither gets
// the cheaper wake-ups of sharing a Go runtime with the load generator.
const helloChildFlag = "-serve-hello"

// helloProcess is a hello server in a child servebench process.
type helloProcess struct {
	addr   string
	cmd    *exec.Cmd
	stdin  io.Closer
	exited chan struct{} // closed once the child has been waited for
}

// startHelloProcess runs `servebench -serve-hello CERT KEY CA` and reads
// the address it listens on from its first line of output. The child
// exits when its stdin closes (and, through Pdeathsig, when we die).
func startHelloProcess(certFile, keyFile, caFile string) (*helloProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, helloChildFlag, certFile, keyFile, caFile)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("servebench: start hello server: %w", err)
	}
	h := &helloProcess{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	// Wait only after the read: it closes the stdout pipe.
	go func() { _ = cmd.Wait(); close(h.exited) }()
	if err != nil {
		h.close()
		return nil, fmt.Errorf("servebench: hello server did not report its address: %w", err)
	}
	h.addr = strings.TrimSpace(line)
	return h, nil
}

// close ends the child (stdin EOF, then SIGKILL after 5 s) and reaps it.
func (h *helloProcess) close() {
	child.Stop(h.cmd.Process, h.exited, func() { _ = h.stdin.Close() }, 5*time.Second)
}

// serveHelloChild is the child's main: serve until stdin closes.
func serveHelloChild(args []string, stdin io.Reader, out io.Writer) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "servebench: "+helloChildFlag+" CERT KEY CA")
		return 2
	}
	h, err := startHello(args[0], args[1], args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.close()
	fmt.Fprintln(out, h.addr)
	_, _ = io.Copy(io.Discard, stdin)
	return 0
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
