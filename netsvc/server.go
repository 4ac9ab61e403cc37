package netsvc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Limits against slow and greedy clients.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Listener is one bound endpoint with the handler it serves.
type Listener struct {
	Name    string // "https", "http", "metrics"
	Addr    string // requested address
	TLS     *tls.Config
	Handler http.Handler

	ln  net.Listener
	srv *http.Server
}

// Bound returns the address actually bound (useful with port 0).
func (l *Listener) Bound() net.Addr { return l.ln.Addr() }

// Listen binds every listener or none: a failure closes the ones already
// bound and names the one that failed.
func Listen(ls []*Listener, log *slog.Logger) error {
	for i, l := range ls {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			for _, prev := range ls[:i] {
				prev.ln.Close()
			}
			return fmt.Errorf("netsvc: listen %s on %s: %w", l.Name, l.Addr, err)
		}
		ln = limitConns(ln, MaxConns)
		if l.TLS != nil {
			ln = tls.NewListener(ln, l.TLS)
		}
		l.ln = ln
		l.srv = &http.Server{
			Handler:           http.MaxBytesHandler(l.Handler, 1<<10),
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
	}
	return nil
}

// Serve runs the bound listeners until ctx is done, then drains in-flight
// requests for up to grace before closing.
func Serve(ctx context.Context, ls []*Listener, grace time.Duration) error {
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			err := l.srv.Serve(l.ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
	}
	var firstErr error
	select {
	case <-ctx.Done():
	case firstErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, l := range ls {
		_ = l.srv.Shutdown(sctx)
	}
	return firstErr
}
