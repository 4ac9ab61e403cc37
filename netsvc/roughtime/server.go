package roughtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aunsorm/timenode/signer/lockedmem"
)

// TimeSource is the node's disciplined clock.
type TimeSource interface {
	// Now returns the current time and the node's published error bound
	// on it (the true time is within t±bound). ok is false while the
	// clock is unsynchronized; nothing is served then.
	Now() (t time.Time, bound time.Duration, ok bool)
}

// Config configures a Server. TimeSource and LongTermKey are required.
type Config struct {
	// Addr is the UDP address to listen on, e.g. ":2002".
	Addr string
	// TimeSource gives MIDP and RADI. It is also the clock of the online
	// key rotation, so that MINT/MAXT and MIDP are in the same time.
	TimeSource TimeSource
	// LongTermKey certifies the online keys; clients are configured with
	// its public key.
	LongTermKey LongTermSigner
	// OnlineKeyLifetime is MAXT-MINT of each online key (default 24h).
	OnlineKeyLifetime time.Duration
	// RotateBefore is how long before MAXT a new online key replaces the
	// current one (default a quarter of the lifetime; at least 2s, so
	// that MIDP rounded up still falls before MAXT).
	RotateBefore time.Duration
	// OnlineKeyLock says whether the online keys' locked memory must
	// really be locked (lockedmem.Options.RequireLock).
	OnlineKeyLock lockedmem.Options
	// BatchSize is the most requests signed together (default 64, at
	// most 512 so that every reply stays below 1024 bytes).
	BatchSize int
	// BatchWindow is how long the first request of a batch waits for
	// others. Zero batches only the requests already queued, adding no
	// latency.
	BatchWindow time.Duration
	// Logger receives rotation and error reports (nil: discarded).
	Logger *slog.Logger
}

// DropReason says why a request got no reply.
type DropReason string

// The reasons counted in Stats.Dropped.
const (
	DropShort          DropReason = "short"           // below MinRequestSize
	DropMalformed      DropReason = "malformed"       // bad framing, message or NONC
	DropVersion        DropReason = "version"         // no version this server speaks
	DropWrongServer    DropReason = "wrong_server"    // SRV names another long-term key
	DropUnsynchronized DropReason = "unsynchronized"  // the clock is not synchronized
	DropRadius         DropReason = "radius_overflow" // the bound does not fit RADI
	DropTooLarge       DropReason = "too_large"       // the reply would exceed the request
	DropOverload       DropReason = "overload"        // the batch queue was full
	DropKey            DropReason = "key_error"       // online key or signature failed
	DropSendError      DropReason = "send_error"      // the reply could not be sent
)

// DropReasons lists every DropReason, for exporting zero counters too.
var DropReasons = []DropReason{
	DropShort, DropMalformed, DropVersion, DropWrongServer, DropUnsynchronized,
	DropRadius, DropTooLarge, DropOverload, DropKey, DropSendError,
}

// Stats are the server's counters since NewServer.
type Stats struct {
	Requests uint64 // datagrams received
	Replies  uint64 // replies sent
	Batches  uint64 // signatures made over a batch
	// Rotations counts online keys made, the first one included.
	Rotations uint64
	// Dropped has every DropReason as a key.
	Dropped map[DropReason]uint64
}

// Server is a Roughtime UDP server.
type Server struct {
	cfg   Config
	log   *slog.Logger
	srv   []byte // SRV value of our long-term key
	queue chan pending

	mu   sync.Mutex
	conn *net.UDPConn

	requests, replies, batches, rotations atomic.Uint64
	dropped                               map[DropReason]*atomic.Uint64

	// online is used by the batcher goroutine only (and Serve after it).
	online *onlineKey
}

type pending struct {
	req  Request
	from netip.AddrPort
}

const maxBatchSize = 512

// NewServer checks cfg and fills in its defaults.
func NewServer(cfg Config) (*Server, error) {
	if cfg.TimeSource == nil || cfg.LongTermKey == nil {
		return nil, errors.New("roughtime: config needs a TimeSource and a LongTermKey")
	}
	if len(cfg.LongTermKey.Public()) != 32 {
		return nil, errors.New("roughtime: long-term key is not an Ed25519 public key")
	}
	if cfg.OnlineKeyLifetime == 0 {
		cfg.OnlineKeyLifetime = 24 * time.Hour
	}
	if cfg.RotateBefore == 0 {
		cfg.RotateBefore = cfg.OnlineKeyLifetime / 4
	}
	if cfg.RotateBefore < 2*time.Second || cfg.RotateBefore >= cfg.OnlineKeyLifetime {
		return nil, fmt.Errorf("roughtime: RotateBefore %v must be at least 2s and below OnlineKeyLifetime %v", cfg.RotateBefore, cfg.OnlineKeyLifetime)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 64
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > maxBatchSize {
		return nil, fmt.Errorf("roughtime: BatchSize %d outside [1, %d]", cfg.BatchSize, maxBatchSize)
	}
	if cfg.BatchWindow < 0 {
		return nil, fmt.Errorf("roughtime: negative BatchWindow %v", cfg.BatchWindow)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:     cfg,
		log:     log.With("service", "roughtime"),
		srv:     srvHash(cfg.LongTermKey.Public()),
		queue:   make(chan pending, 4*cfg.BatchSize),
		dropped: make(map[DropReason]*atomic.Uint64, len(DropReasons)),
	}
	for _, r := range DropReasons {
		s.dropped[r] = new(atomic.Uint64)
	}
	return s, nil
}

// Listen binds the UDP socket, so that Addr is known before Serve.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		return errors.New("roughtime: already listening")
	}
	addr, err := net.ResolveUDPAddr("udp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("roughtime: listen %q: %w", s.cfg.Addr, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("roughtime: listen: %w", err)
	}
	s.conn = conn
	return nil
}

// Addr returns the bound address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	return s.conn.LocalAddr()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:  s.requests.Load(),
		Replies:   s.replies.Load(),
		Batches:   s.batches.Load(),
		Rotations: s.rotations.Load(),
		Dropped:   make(map[DropReason]uint64, len(s.dropped)),
	}
	for r, c := range s.dropped {
		st.Dropped[r] = c.Load()
	}
	return st
}

func (s *Server) drop(r DropReason, n int) { s.dropped[r].Add(uint64(n)) }

// Serve answers requests until ctx is done (then it returns nil) or the
// socket fails. It calls Listen if that was not done. The socket and the
// online key are released on return; a Server serves once.
func (s *Server) Serve(ctx context.Context) error {
	if s.Addr() == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	done := make(chan struct{})
	batchCtx, cancelBatch := context.WithCancel(ctx)
	go func() {
		defer close(done)
		s.batcher(batchCtx, conn)
	}()
	err := s.readLoop(conn)
	cancelBatch()
	<-done
	_ = conn.Close()
	if s.online != nil {
		_ = s.online.key.Close()
		s.online = nil
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Server) readLoop(conn *net.UDPConn) error {
	// Large enough for any UDP datagram, so none is silently truncated.
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("roughtime: read: %w", err)
		}
		s.requests.Add(1)
		req, err := ParseRequest(buf[:n])
		switch {
		case errors.Is(err, ErrShort):
			s.drop(DropShort, 1)
			continue
		case errors.Is(err, ErrUnsupported):
			s.drop(DropVersion, 1)
			continue
		case err != nil:
			s.drop(DropMalformed, 1)
			s.log.Debug("malformed request", "from", from, "err", err)
			continue
		}
		if req.SRV != nil && !bytes.Equal(req.SRV, s.srv) {
			s.drop(DropWrongServer, 1)
			continue
		}
		// buf is reused by the next read; keep only the nonce.
		req.Nonce = bytes.Clone(req.Nonce)
		req.SRV = nil
		select {
		case s.queue <- pending{req: req, from: from}:
		default:
			s.drop(DropOverload, 1)
		}
	}
}

// batcher collects queued requests into batches and answers them.
func (s *Server) batcher(ctx context.Context, conn *net.UDPConn) {
	var timer *time.Timer
	for {
		var first pending
		select {
		case <-ctx.Done():
			return
		case first = <-s.queue:
		}
		batch := []pending{first}
		if s.cfg.BatchWindow > 0 {
			if timer == nil {
				timer = time.NewTimer(s.cfg.BatchWindow)
			} else {
				timer.Reset(s.cfg.BatchWindow)
			}
		collect:
			for len(batch) < s.cfg.BatchSize {
				select {
				case p := <-s.queue:
					batch = append(batch, p)
				case <-timer.C:
					break collect
				case <-ctx.Done():
					return
				}
			}
			timer.Stop()
		} else {
		drain:
			for len(batch) < s.cfg.BatchSize {
				select {
				case p := <-s.queue:
					batch = append(batch, p)
				default:
					break drain
				}
			}
		}
		s.answer(conn, batch)
	}
}

// answer signs and sends the replies of one batch, one signature per
// version present in it.
func (s *Server) answer(conn *net.UDPConn, batch []pending) {
	// The time is read once the batch is closed: MIDP is the moment of
	// processing, as both protocols ask.
	now, bound, ok := s.cfg.TimeSource.Now()
	if !ok {
		s.drop(DropUnsynchronized, len(batch))
		return
	}
	for _, v := range []Version{VersionDraft11, VersionGoogle} {
		var group []pending
		for _, p := range batch {
			if p.req.Version == v {
				group = append(group, p)
			}
		}
		if len(group) > 0 {
			s.answerVersion(conn, v, group, now, bound)
		}
	}
}

func (s *Server) answerVersion(conn *net.UDPConn, v Version, group []pending, now time.Time, bound time.Duration) {
	midp, radi, ok := quantise(v, now, bound)
	if !ok {
		s.drop(DropRadius, len(group))
		s.log.Warn("error bound does not fit RADI; not answering", "version", v, "bound", bound)
		return
	}
	key, err := s.onlineKeyFor(v, now, midp)
	if err != nil {
		s.drop(DropKey, len(group))
		s.log.Error("online key", "err", err)
		return
	}
	nonces := make([][]byte, len(group))
	for i, p := range group {
		nonces[i] = p.req.Nonce
	}
	replies, err := signBatch(v, nonces, midp, radi, key)
	if err != nil {
		s.drop(DropKey, len(group))
		s.log.Error("sign batch", "err", err)
		return
	}
	s.batches.Add(1)
	for i, p := range group {
		// Anti-amplification: never more bytes out than came in.
		if len(replies[i]) > p.req.Size {
			s.drop(DropTooLarge, 1)
			continue
		}
		if _, err := conn.WriteToUDPAddrPort(replies[i], p.from); err != nil {
			s.drop(DropSendError, 1)
			s.log.Debug("send reply", "to", p.from, "err", err)
			continue
		}
		s.replies.Add(1)
	}
}

// onlineKeyFor returns the online key for a reply at now with MIDP midp,
// making a new one first when there is none, when now is within
// RotateBefore of its MAXT, or when its delegation does not cover midp
// (the clock stepped back before MINT, or forward past MAXT).
func (s *Server) onlineKeyFor(v Version, now time.Time, midp uint64) (*onlineKey, error) {
	k := s.online
	if k != nil && now.Add(s.cfg.RotateBefore).Before(k.notAfter) && k.covers(v, midp) {
		return k, nil
	}
	nk, err := newOnlineKey(s.cfg.LongTermKey, now, s.cfg.OnlineKeyLifetime, s.cfg.OnlineKeyLock)
	if nk == nil {
		return nil, err
	}
	if err != nil {
		s.log.Warn("online key is not in locked memory", "err", err)
	}
	if !nk.covers(v, midp) {
		_ = nk.key.Close()
		return nil, fmt.Errorf("roughtime: new online key does not cover MIDP %d", midp)
	}
	if k != nil {
		_ = k.key.Close()
	}
	s.online = nk
	s.rotations.Add(1)
	s.log.Info("new online key", "public", fmt.Sprintf("%x", nk.key.Public()),
		"not_before", nk.notBefore, "not_after", nk.notAfter)
	return nk, nil
}
