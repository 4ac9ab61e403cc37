package nts

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
)

// ALPN is the TLS application protocol of NTS-KE (RFC 8915 section 4).
const ALPN = "ntske/1"

// DefaultAddr is the NTS-KE service address: TCP port 4460.
const DefaultAddr = ":4460"

// exporterLabel is the TLS exporter label of NTS keys (RFC 8915 section 5.1).
const exporterLabel = "EXPORTER-network-time-security"

// Bounds on draining a refused client's unread bytes.
const (
	lingerTimeout = time.Second
	lingerBytes   = 16 * MaxRequestBytes
)

// Defaults of Config.
const (
	DefaultCookies          = 8
	DefaultRotateEvery      = 24 * time.Hour
	DefaultKeepKeys         = 3
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultIOTimeout        = 5 * time.Second
	DefaultMaxSessions      = 256
)

// Config configures the NTS-KE server and, through its cookie keys, the
// NTS processing of the NTP server.
type Config struct {
	// Addr is the TCP address to serve; "" means DefaultAddr.
	Addr string
	// Certificates is the server's certificate chain and key, used when
	// GetCertificate is nil.
	Certificates []tls.Certificate
	// GetCertificate, when set, picks the certificate per handshake, so
	// the daemon can swap certificates on reload.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// NTPServer, when set, is announced in an NTPv4 Server Negotiation
	// record (a host name or address); otherwise clients use the KE host.
	NTPServer string
	// NTPPort, when not 0, is announced in an NTPv4 Port Negotiation
	// record; otherwise clients use port 123.
	NTPPort int
	// Cookies is the number of cookies per KE response; 0 means
	// DefaultCookies.
	Cookies int
	// RotateEvery is the period of the cookie master key rotation that
	// Serve runs; 0 means DefaultRotateEvery.
	RotateEvery time.Duration
	// KeepKeys is how many master keys are accepted: the current one and
	// KeepKeys-1 previous ones, so a cookie stays valid for at least
	// (KeepKeys-1) * RotateEvery. 0 means DefaultKeepKeys. A previous key
	// is also dropped (KeepKeys-1) * RotateEvery after it was retired,
	// which only matters across restarts and extra Rotate calls.
	KeepKeys int
	// KeyFile, when set, keeps the cookie master keys in this file, so a
	// restart does not invalidate every client's cookies. NewKEServer
	// loads it (a missing file is created) and every rotation rewrites it
	// atomically with mode 0600. It must pass the signing keys' checks:
	// a regular file owned by this process's user, no group or other
	// permissions; otherwise NewKEServer fails naming it. "" keeps the
	// keys in memory only.
	KeyFile string
	// HandshakeTimeout bounds the TLS handshake; 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IOTimeout bounds reading the request and writing the response
	// after the handshake; 0 means DefaultIOTimeout.
	IOTimeout time.Duration
	// MaxSessions bounds concurrent KE sessions; connections beyond it
	// are closed at once. 0 means DefaultMaxSessions.
	MaxSessions int
	// Clock drives the key rotation timer; nil means the real clock.
	Clock clockwork.Clock
	// Rand is the source of master keys and nonces; nil means
	// crypto/rand.Reader. It must be safe for concurrent use.
	Rand io.Reader
	// Log receives the server's events; nil discards them.
	Log *slog.Logger
}

// Stats is a snapshot of the NTS counters since the server was created.
type Stats struct {
	Sessions          uint64 // KE connections accepted
	Rejected          uint64 // KE connections closed for MaxSessions
	HandshakeFailures uint64 // failed TLS handshakes, wrong ALPN included
	KEResponses       uint64 // KE responses with cookies
	KENoCommon        uint64 // KE responses refusing the protocol or AEAD
	KEErrors          uint64 // KE Error records sent (bad or unsupported requests)
	KEAborted         uint64 // sessions that ended before a complete request
	NTPAuthenticated  uint64 // NTS requests authenticated and answered
	NTPBadCookie      uint64 // NTS requests whose cookie did not open (NAK)
	NTPBadAuth        uint64 // NTS requests whose authenticator failed (NAK)
	NTPMalformed      uint64 // NTS requests with missing or broken fields (NAK)
	CookiesIssued     uint64 // cookies sent in KE responses and NTP replies
	KeyRotations      uint64 // master key rotations after the first key
	KeyIDs            []uint32
}

// KEServer is the NTS-KE server (RFC 8915 section 4). It owns the cookie
// master keys, which its Processor uses to serve NTS-protected NTP.
type KEServer struct {
	cfg   Config
	tls   *tls.Config
	keys  *keyRing
	proc  *Processor
	log   *slog.Logger
	clock clockwork.Clock

	sessions, rejected, hsFail, responses, noCommon, keErrors, aborted,
	keCookies, rotations atomic.Uint64

	mu     sync.Mutex
	ln     net.Listener
	addr   net.Addr
	active map[net.Conn]struct{}
	sem    chan struct{}
}

// NewKEServer validates cfg and creates the first cookie master key. It
// does not bind.
func NewKEServer(cfg Config) (*KEServer, error) {
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil {
		return nil, errors.New("nts: new KE server: no certificate")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("nts: new KE server: address %q: %w", cfg.Addr, err)
	}
	if cfg.NTPPort < 0 || cfg.NTPPort > 65535 || len(cfg.NTPServer) > 255 {
		return nil, fmt.Errorf("nts: new KE server: NTP server %q port %d: out of range", cfg.NTPServer, cfg.NTPPort)
	}
	if cfg.Cookies < 0 || cfg.Cookies > MaxReplyCookies || cfg.KeepKeys < 0 || cfg.MaxSessions < 0 ||
		cfg.RotateEvery < 0 || cfg.HandshakeTimeout < 0 || cfg.IOTimeout < 0 {
		return nil, errors.New("nts: new KE server: negative or too large limit")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.Cookies, DefaultCookies)
	def(&cfg.KeepKeys, DefaultKeepKeys)
	def(&cfg.MaxSessions, DefaultMaxSessions)
	defDur(&cfg.RotateEvery, DefaultRotateEvery)
	defDur(&cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	defDur(&cfg.IOTimeout, DefaultIOTimeout)
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	grace := time.Duration(cfg.KeepKeys-1) * cfg.RotateEvery
	var keys *keyRing
	var err error
	if cfg.KeyFile != "" {
		var rotated bool
		keys, rotated, err = openKeyRing(cfg.KeyFile, cfg.Rand, cfg.Clock.Now, cfg.KeepKeys, grace, cfg.RotateEvery)
		if err != nil {
			return nil, err
		}
		log.Info("cookie keys loaded", "component", "nts-ke", "file", cfg.KeyFile, "key_ids", keys.ids(), "rotated", rotated)
	} else {
		if keys, err = newKeyRing(cfg.Rand, cfg.Clock.Now, cfg.KeepKeys); err != nil {
			return nil, err
		}
		keys.grace, keys.every = grace, cfg.RotateEvery
	}
	s := &KEServer{
		cfg:   cfg,
		keys:  keys,
		proc:  &Processor{keys: keys, rand: cfg.Rand},
		log:   log.With("component", "nts-ke"),
		clock: cfg.Clock,
		tls: &tls.Config{
			MinVersion:     tls.VersionTLS13,
			NextProtos:     []string{ALPN},
			Certificates:   cfg.Certificates,
			GetCertificate: cfg.GetCertificate,
		},
		active: make(map[net.Conn]struct{}),
		sem:    make(chan struct{}, cfg.MaxSessions),
	}
	return s, nil
}

// Processor returns the NTS processor to put in ntp.Config.NTS. It shares
// this server's cookie keys, so cookies issued here open there.
func (s *KEServer) Processor() *Processor { return s.proc }

// Rotate makes a fresh random master key the one that seals new cookies
// and drops the oldest beyond Config.KeepKeys or past their grace. Cookies
// sealed under the kept keys stay valid. With Config.KeyFile the keys are
// saved; if only saving fails the new key is in use all the same and the
// error says so. The daemon calls it on reload; Serve calls it when the
// current key is Config.RotateEvery old.
func (s *KEServer) Rotate() error {
	before := s.keys.current()
	err := s.keys.rotate()
	if s.keys.current() == before {
		s.log.Error("cookie key rotation failed", "err", err)
		return err
	}
	s.rotations.Add(1)
	if err != nil {
		s.log.Error("cookie key rotated but not saved: a restart will lose it", "err", err)
		return err
	}
	s.log.Info("cookie key rotated", "key_ids", s.keys.ids())
	return nil
}

// Stats returns a snapshot of the KE and NTS counters.
func (s *KEServer) Stats() Stats {
	c := &s.proc.c
	return Stats{
		Sessions:          s.sessions.Load(),
		Rejected:          s.rejected.Load(),
		HandshakeFailures: s.hsFail.Load(),
		KEResponses:       s.responses.Load(),
		KENoCommon:        s.noCommon.Load(),
		KEErrors:          s.keErrors.Load(),
		KEAborted:         s.aborted.Load(),
		NTPAuthenticated:  c.ok.Load(),
		NTPBadCookie:      c.badCookie.Load(),
		NTPBadAuth:        c.badAuth.Load(),
		NTPMalformed:      c.malformed.Load(),
		CookiesIssued:     s.keCookies.Load() + c.cookies.Load(),
		KeyRotations:      s.rotations.Load(),
		KeyIDs:            s.keys.ids(),
	}
}

// Listen binds the TCP listener. Serve calls it when it has not been
// called; calling it first lets the caller learn Addr and bind errors.
// Calling it again does nothing.
func (s *KEServer) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("nts: listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.addr = ln.Addr()
	s.log.Info("listening", "addr", s.addr.String(), "ntp_server", s.cfg.NTPServer, "ntp_port", s.cfg.NTPPort,
		"rotate_every", s.cfg.RotateEvery.String(), "keep_keys", s.cfg.KeepKeys)
	return nil
}

// Addr returns the bound address, or nil before Listen.
func (s *KEServer) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Serve binds (unless Listen already did), rotates the cookie master key
// every Config.RotateEvery and serves KE sessions until ctx is done; then
// it closes the listener and the open sessions, waits for them and returns
// nil. It returns an error if binding or accepting fails.
func (s *KEServer) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { s.rotateLoop(stop) })
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		_ = ln.Close()
		s.mu.Lock()
		for c := range s.active {
			_ = c.Close()
		}
		s.mu.Unlock()
	})

	var failure error
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				failure = err
			}
			break
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.rejected.Add(1)
			_ = conn.Close()
			continue
		}
		s.sessions.Add(1)
		s.mu.Lock()
		s.active[conn] = struct{}{}
		s.mu.Unlock()
		wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.active, conn)
				s.mu.Unlock()
				_ = conn.Close()
				<-s.sem
			}()
			s.session(ctx, conn)
		})
	}
	close(stop)
	wg.Wait()
	s.mu.Lock()
	s.ln = nil
	s.mu.Unlock()
	if failure != nil {
		return fmt.Errorf("nts: accept: %w", failure)
	}
	return nil
}

// rotateRetry is the wait before trying again after a failed rotation.
const rotateRetry = time.Minute

// rotateLoop rotates when the current key is RotateEvery old. It counts
// from the key's creation, not from the start, so a key loaded from the
// file keeps its schedule across restarts, and a Rotate on reload pushes
// the next rotation a whole period away.
//
// A key made "in the future" (the clock was stepped back since) would
// wait for the clock to catch up; no wait is longer than one period, and
// a whole period waited rotates whatever the creation time says.
func (s *KEServer) rotateLoop(stop <-chan struct{}) {
	var waitedOn *masterKey // the key a whole period was waited on
	for {
		cur := s.keys.current()
		wait := cur.created.Add(s.cfg.RotateEvery).Sub(s.clock.Now())
		if wait <= 0 || waitedOn == cur {
			_ = s.Rotate()
			if s.keys.current() != cur {
				waitedOn = nil
				continue
			}
			wait = rotateRetry
		}
		waitedOn = nil
		if wait >= s.cfg.RotateEvery {
			wait, waitedOn = s.cfg.RotateEvery, cur
		}
		t := s.clock.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.Chan():
		}
	}
}

// session runs one KE exchange: handshake, request, response, close.
// Deadlines are network deadlines and so use the host's time; they only
// bound how long a slow or silent client can hold a session.
func (s *KEServer) session(ctx context.Context, conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	tc := tls.Server(conn, s.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		s.hsFail.Add(1)
		s.log.Debug("handshake failed", "peer", conn.RemoteAddr().String(), "err", err)
		return
	}
	st := tc.ConnectionState()
	if st.NegotiatedProtocol != ALPN {
		// A client that offered no ALPN at all gets here: NTS-KE
		// requires "ntske/1".
		s.hsFail.Add(1)
		return
	}
	_ = conn.SetDeadline(time.Now().Add(s.cfg.IOTimeout))

	var buf [MaxRequestBytes]byte
	n := 0
	var req keRequest
	for {
		k, rerr := tc.Read(buf[n:])
		n += k
		var perr error
		req, perr = parseKERequest(buf[:n])
		if perr == nil {
			break
		}
		var ke *keError
		if errors.As(perr, &ke) {
			s.refuse(tc, conn, ke)
			return
		}
		if n == len(buf) {
			s.refuse(tc, conn, &keError{code: ErrorBadRequest, reason: "request too long"})
			return
		}
		if rerr != nil {
			// EOF, deadline or reset before End of Message: no one
			// to answer.
			s.aborted.Add(1)
			return
		}
	}
	resp, cookies, err := s.response(&st, req)
	if err != nil {
		s.log.Error("building KE response", "err", err)
		s.refuse(tc, conn, &keError{code: ErrorInternalServer, reason: err.Error()})
		return
	}
	if _, err := tc.Write(resp); err != nil {
		s.aborted.Add(1)
		return
	}
	_ = tc.Close()
	if cookies > 0 {
		s.responses.Add(1)
		s.keCookies.Add(uint64(cookies))
	} else {
		s.noCommon.Add(1)
	}
}

// refuse sends an Error record and End of Message, then closes.
func (s *KEServer) refuse(tc *tls.Conn, conn net.Conn, ke *keError) {
	s.keErrors.Add(1)
	s.log.Debug("KE request refused", "peer", conn.RemoteAddr().String(), "code", ke.code, "reason", ke.reason)
	b := appendUint16Record(nil, true, RecordError, ke.code)
	b = AppendRecord(b, true, RecordEndOfMessage, nil)
	if _, err := tc.Write(b); err != nil {
		return
	}
	// Closing with unread request bytes makes the kernel send a reset,
	// which can destroy the Error record before the client reads it.
	// So end our side, then discard what the client still sends, for a
	// bounded time and amount.
	_ = tc.CloseWrite()
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.CopyN(io.Discard, conn, lingerBytes)
}

// response builds the answer to req: the chosen protocol and algorithm,
// the NTPv4 server and port when configured, and the cookies carrying the
// keys exported from the TLS session. A client offering neither NTPv4 nor
// AEAD_AES_SIV_CMAC_256 gets the empty record that says "none of these"
// (RFC 8915 sections 4.1.2 and 4.1.5) and no cookies.
func (s *KEServer) response(st *tls.ConnectionState, req keRequest) ([]byte, int, error) {
	var b []byte
	if !req.ntpv4 {
		b = AppendRecord(b, true, RecordNextProtocol, nil)
		return AppendRecord(b, true, RecordEndOfMessage, nil), 0, nil
	}
	b = appendUint16Record(b, true, RecordNextProtocol, ProtocolNTPv4)
	if !req.sivAES {
		b = AppendRecord(b, true, RecordAEADAlgorithm, nil)
		return AppendRecord(b, true, RecordEndOfMessage, nil), 0, nil
	}
	b = appendUint16Record(b, true, RecordAEADAlgorithm, aeadSIV256)
	if s.cfg.NTPServer != "" {
		b = AppendRecord(b, true, RecordNTPv4Server, []byte(s.cfg.NTPServer))
	}
	if s.cfg.NTPPort != 0 {
		b = appendUint16Record(b, true, RecordNTPv4Port, uint16(s.cfg.NTPPort))
	}
	keys, err := ExportKeys(st)
	if err != nil {
		return nil, 0, err
	}
	defer clear(keys.C2S[:])
	defer clear(keys.S2C[:])
	for range s.cfg.Cookies {
		b = binary.BigEndian.AppendUint16(b, RecordNewCookie)
		b = binary.BigEndian.AppendUint16(b, CookieLen)
		if b, err = s.keys.appendCookie(b, &keys); err != nil {
			return nil, 0, err
		}
	}
	return AppendRecord(b, true, RecordEndOfMessage, nil), s.cfg.Cookies, nil
}

// ExportKeys derives the C2S and S2C keys of NTPv4 with
// AEAD_AES_SIV_CMAC_256 from a TLS session (RFC 8915 section 5.1): the
// exporter label "EXPORTER-network-time-security" with the context
// protocol id 0x0000, AEAD id 0x000F and 0x00 (C2S) or 0x01 (S2C). Both
// ends of the session derive the same keys, so clients (the end-to-end
// test among them) use it too.
func ExportKeys(st *tls.ConnectionState) (Keys, error) {
	var keys Keys
	for i, dst := range []*[keyLen]byte{&keys.C2S, &keys.S2C} {
		ctx := []byte{0, ProtocolNTPv4, 0, aeadSIV256, byte(i)}
		k, err := st.ExportKeyingMaterial(exporterLabel, ctx, keyLen)
		if err != nil {
			return keys, fmt.Errorf("nts: export keys: %w", err)
		}
		copy(dst[:], k)
		clear(k)
	}
	return keys, nil
}
