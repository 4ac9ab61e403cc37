package ntp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

// DefaultBatch is the number of packets a worker receives or sends per
// system call unless Config.Batch says otherwise.
const DefaultBatch = 32

// DefaultSendBatch is the number of replies a worker sends per system call
// unless Config.SendBatch says otherwise. A reply waits after its transmit
// timestamp for the ones sent before it in the same call, and that wait is
// an error its client cannot tell from path asymmetry: on loopback each
// reply ahead of it costs about 3 µs (docs/SERVING.md, "Transmit
// timestamps").
const DefaultSendBatch = 4

// maxBatch bounds Config.Batch (the kernel's UIO_MAXIOV is 1024).
const maxBatch = 1024

// Config is the server's static configuration.
type Config struct {
	// Addr is the UDP address to serve, e.g. ":123" or "127.0.0.1:0".
	Addr string
	// Workers is the number of sockets bound to Addr with SO_REUSEPORT,
	// each with its own goroutine; 0 means GOMAXPROCS.
	Workers int
	// Batch is the number of packets per recvmmsg call; 0 means
	// DefaultBatch, 1 turns batching off.
	Batch int
	// SendBatch is the most replies per sendmmsg call, whose transmit
	// timestamps are read just before it; 0 means DefaultSendBatch. An NTS
	// reply's transmit timestamp is sealed in when it is built, so it also
	// waits for the rest of its group to be built.
	SendBatch int
	// RateLimit limits each client's request rate; the zero value
	// disables limiting (DefaultRateLimit is a sensible choice).
	RateLimit RateLimit
	// NTS, when set, serves NTS-protected requests (RFC 8915): a version 4
	// request carrying an NTS Cookie is authenticated by NTS and answered
	// with an authenticated reply or an NTS NAK. Requests without a cookie
	// are served as plain NTP either way.
	NTS NTSProcessor
}

// Server is an NTP server. Create it with NewServer, then call Serve.
type Server struct {
	cfg       Config
	clk       clock.Clock
	status    func() Status
	log       *slog.Logger
	precision int8
	limiter   *limiter
	epoch     time.Time // monotonic base of the rate limiter's clock
	counters  []counters

	mu    sync.Mutex
	conns []*net.UDPConn
	addr  net.Addr

	// sent, when a test sets it before Serve, is told the number of
	// replies each sendmmsg carried, on the worker's goroutine.
	sent func(n int)
}

// NewServer validates cfg and returns a server that stamps replies from clk
// (the disciplined clock) and describes itself from status. It measures the
// clock's read resolution for the precision field; it does not bind.
func NewServer(cfg Config, clk clock.Clock, status func() Status, log *slog.Logger) (*Server, error) {
	if clk == nil || status == nil || log == nil {
		return nil, errors.New("ntp: new server: clock, status and logger are required")
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("ntp: new server: address %q: %w", cfg.Addr, err)
	}
	if cfg.Workers < 0 || cfg.Batch < 0 || cfg.Batch > maxBatch || cfg.SendBatch < 0 || cfg.SendBatch > maxBatch {
		return nil, fmt.Errorf("ntp: new server: workers %d, batch %d, send batch %d: out of range", cfg.Workers, cfg.Batch, cfg.SendBatch)
	}
	if cfg.SendBatch == 0 {
		cfg.SendBatch = DefaultSendBatch
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	s := &Server{
		cfg:       cfg,
		clk:       clk,
		status:    status,
		log:       log.With("component", "ntp"),
		precision: MeasurePrecision(clk),
		limiter:   newLimiter(cfg.RateLimit),
		epoch:     time.Now(),
		counters:  make([]counters, cfg.Workers),
	}
	return s, nil
}

// Listen binds the server's sockets. Serve calls it when it has not been
// called; calling it first lets the caller learn Addr and bind errors before
// serving. Calling it again does nothing.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns != nil {
		return nil
	}
	conns, err := listenReusePort(s.cfg.Addr, s.cfg.Workers)
	if err != nil {
		return err
	}
	s.conns = conns
	s.addr = conns[0].LocalAddr()
	s.log.Info("listening", "addr", s.addr.String(), "workers", len(conns),
		"batch", s.cfg.Batch, "send_batch", s.cfg.SendBatch, "precision_log2s", s.precision,
		"rate_limit_interval_ms", s.cfg.RateLimit.Interval.Milliseconds())
	return nil
}

// Addr returns the bound address, or nil before Listen or Serve has bound.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Precision returns the precision (log2 seconds) measured from the clock.
func (s *Server) Precision() int8 { return s.precision }

// Stats returns a snapshot of the counters summed over all workers.
func (s *Server) Stats() Stats {
	var st Stats
	for i := range s.counters {
		s.counters[i].snapshot(&st)
	}
	return st
}

// Serve binds (unless Listen already did), answers requests until ctx is
// done, then closes the sockets and returns nil. It returns an error if
// binding fails or a worker fails for a reason other than shutdown.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	conns := s.conns
	s.mu.Unlock()

	errc := make(chan error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		w, err := newWorker(s, c, &s.counters[i])
		if err != nil {
			closeAll(conns)
			return err
		}
		wg.Go(func() { errc <- w.run() })
	}
	var failure error
	select {
	case <-ctx.Done():
	case failure = <-errc:
	}
	closeAll(conns)
	wg.Wait()
	s.mu.Lock()
	s.conns = nil // a later Serve binds afresh; Addr keeps the last address
	addr := s.addr
	s.mu.Unlock()
	st := s.Stats()
	s.log.Info("stopped", "requests", st.Requests, "replies", st.Replies,
		"kod_sent", st.KoDSent, "dropped", st.Dropped())
	if failure != nil && ctx.Err() == nil {
		return fmt.Errorf("ntp: serve %s: %w", addr, failure)
	}
	return nil
}

func closeAll(conns []*net.UDPConn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// MeasurePrecision returns the read resolution of clk as log2 seconds, the
// way NTP's precision field wants it: the smallest positive step seen
// between consecutive readings, or the mean cost of one reading when that is
// larger. A clock that never moves during the measurement gets 0 (1 s).
func MeasurePrecision(clk clock.Clock) int8 {
	const reads = 256
	minStep := time.Duration(math.MaxInt64)
	begin := time.Now()
	prev := clk.Now()
	for range reads {
		t := clk.Now()
		if d := t.Sub(prev); d > 0 && d < minStep {
			minStep = d
		}
		prev = t
	}
	if minStep == time.Duration(math.MaxInt64) {
		return 0
	}
	res := max(minStep, time.Since(begin)/reads)
	p := math.Ceil(math.Log2(res.Seconds()))
	return int8(min(max(p, -32), 0))
}
