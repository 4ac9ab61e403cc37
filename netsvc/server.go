package netsvc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Limits against slow and greedy clients that hold a verified client
// certificate (or reach a listener without TLS: see anonymousServer).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Listener is one bound endpoint with the handler it serves.
//
// A TLS listener completes each handshake itself, within the admission's
// HandshakeTimeout, before HTTP sees the connection: a connection with a
// verified client certificate goes to a server with the long timeouts
// above, any other to one with short timeouts and few HTTP/2 streams. The
// TLS config must verify every client certificate it accepts
// (mtls.Manager does, in VerifyConnection): a certificate presented and
// not refused is what "authenticated" means here.
type Listener struct {
	Name    string // "https", "http", "metrics"
	Addr    string // requested address
	TLS     *tls.Config
	Handler http.Handler
	// Admission bounds the listener's connections; zero fields take the
	// defaults.
	Admission Admission

	ln         net.Listener
	adm        *admitter
	log        *slog.Logger
	auth, anon *queuedServer // auth is nil without TLS
}

// Bound returns the address actually bound (useful with port 0).
func (l *Listener) Bound() net.Addr { return l.ln.Addr() }

// queuedServer is an http.Server fed connections through a queue.
type queuedServer struct {
	srv *http.Server
	q   *connQueue
}

// Listen binds every listener or none: a failure closes the ones already
// bound and names the one that failed. When one of ls serves a Metrics'
// Handler, the admission figures of all of ls are exported through it.
func Listen(ls []*Listener, log *slog.Logger) error {
	for i, l := range ls {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			for _, prev := range ls[:i] {
				prev.ln.Close()
			}
			return fmt.Errorf("netsvc: listen %s on %s: %w", l.Name, l.Addr, err)
		}
		l.ln = ln
		l.adm = newAdmitter(l.Admission)
		l.log = log.With("component", "admission", "listener", l.Name)
		errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
		h := http.MaxBytesHandler(l.Handler, 1<<10)
		l.anon = anonymousServer(ln.Addr(), h, errLog, l.adm)
		if l.TLS != nil {
			l.auth = authenticatedServer(ln.Addr(), h, errLog)
		}
	}
	for _, l := range ls {
		if mh, ok := l.Handler.(*metricsHandler); ok {
			mh.m.registerAdmission(ls)
			break
		}
	}
	return nil
}

// authenticatedServer serves clients with a verified certificate.
func authenticatedServer(addr net.Addr, h http.Handler, errLog *stdlog.Logger) *queuedServer {
	return &queuedServer{q: newConnQueue(addr), srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errLog,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          authenticatedMaxStreams,
			MaxReceiveBufferPerConnection: h2ReceiveWindowConn,
			MaxReceiveBufferPerStream:     h2ReceiveWindowStream,
			WriteByteTimeout:              writeTimeout,
		},
	}}
}

// anonymousServer serves connections without a verified client
// certificate: the gateway's /health check, 401s, and every connection
// of a listener without TLS. Short timeouts and few streams, so that such
// a connection frees its slot (and its memory) within seconds.
func anonymousServer(addr net.Addr, h http.Handler, errLog *stdlog.Logger, adm *admitter) *queuedServer {
	return &queuedServer{q: newConnQueue(addr), srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: anonymousHeaderTimeout,
		ReadTimeout:       anonymousRequestTimeout,
		WriteTimeout:      anonymousRequestTimeout,
		IdleTimeout:       adm.cfg.AnonymousIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errLog,
		ConnState:         adm.connState,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          anonymousMaxStreams,
			MaxReceiveBufferPerConnection: h2ReceiveWindowConn,
			MaxReceiveBufferPerStream:     h2ReceiveWindowStream,
			WriteByteTimeout:              anonymousRequestTimeout,
		},
	}}
}

// Serve runs the bound listeners until ctx is done, then drains in-flight
// requests for up to grace before closing.
func Serve(ctx context.Context, ls []*Listener, grace time.Duration) error {
	errc := make(chan error, 3*len(ls))
	for _, l := range ls {
		for _, s := range l.servers() {
			go func() {
				err := s.srv.Serve(s.q)
				if errors.Is(err, http.ErrServerClosed) {
					err = nil
				}
				errc <- err
			}()
		}
		go func() { errc <- l.accept() }()
	}
	var firstErr error
	select {
	case <-ctx.Done():
	case firstErr = <-errc:
	}
	for _, l := range ls {
		l.ln.Close()
		for _, c := range l.adm.handshakes() {
			c.abort()
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range ls {
		for _, s := range l.servers() {
			wg.Go(func() {
				if s.srv.Shutdown(sctx) != nil {
					_ = s.srv.Close()
				}
			})
		}
	}
	wg.Wait()
	return firstErr
}

func (l *Listener) servers() []*queuedServer {
	if l.auth == nil {
		return []*queuedServer{l.anon}
	}
	return []*queuedServer{l.auth, l.anon}
}

// accept admits connections until the listener is closed. It never
// blocks on a full listener: a newcomer evicts an unauthenticated
// connection or is refused at once, so the kernel's accept queue keeps
// moving and a legitimate client's SYN is never left waiting behind a
// flood.
func (l *Listener) accept() error {
	var backoff time.Duration
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors or an aborted connection: wait a
			// little, as net/http does, rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c, victims := l.adm.admit(raw, l.TLS != nil)
		for _, v := range victims {
			v.abort()
		}
		if c == nil {
			(&admConn{Conn: raw}).abort()
			continue
		}
		if l.TLS == nil {
			if !l.anon.q.push(c) {
				c.abort()
			}
			continue
		}
		go l.handshake(c)
	}
}

// handshake completes the TLS handshake within the admission's bound and
// hands the connection to the server its client certificate earns.
func (l *Listener) handshake(c *admConn) {
	tc := tls.Server(c, l.TLS)
	_ = c.SetDeadline(time.Now().Add(l.adm.cfg.HandshakeTimeout))
	err := tc.Handshake()
	if err != nil {
		var rh tls.RecordHeaderError
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			l.adm.handshakeTimeouts.Add(1)
		case errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader):
			// As net/http does: say why, in the client's language.
			_, _ = c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"))
			l.adm.handshakeFailures.Add(1)
		default:
			l.adm.handshakeFailures.Add(1)
		}
		l.log.Debug("TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	authenticated := len(tc.ConnectionState().PeerCertificates) > 0
	if !l.adm.handshaken(c, authenticated) {
		c.Close() // evicted during the handshake
		return
	}
	q := l.anon.q
	if authenticated {
		q = l.auth.q
	}
	if !q.push(tc) {
		c.abort()
	}
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// connQueue is a net.Listener whose connections the accept loop hands
// over, so an http.Server serves connections admitted elsewhere.
type connQueue struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the next handed-over connection.
func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; connections not yet taken are refused by push.
func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

// Addr is the address of the socket the connections came in on.
func (q *connQueue) Addr() net.Addr { return q.addr }

// push hands c to the server; false once the queue is closed.
func (q *connQueue) push(c net.Conn) bool {
	select {
	case <-q.done:
		return false
	default:
	}
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}
