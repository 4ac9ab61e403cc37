package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// attack is one replayed finding of the red team.
type attack struct {
	name  string
	about string // what it does, for the table
	run   func(ctx context.Context, t *target, st *attackStats)
	// ready reports that the attack has reached its intended hold (the
	// measurement starts then, or after rampLimit).
	ready func(st *attackStats) bool
}

// attackStats counts what an attack did.
type attackStats struct {
	opened, failed, open, peak atomic.Int64
	// answers by request kind and HTTP status (plain flood), e.g.
	// "nonce 403".
	codes sync.Map // string → *atomic.Int64
}

func (s *attackStats) up() {
	n := s.open.Add(1)
	s.opened.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
}

func (s *attackStats) code(kind string, status int) {
	v, _ := s.codes.LoadOrStore(fmt.Sprintf("%s %d", kind, status), new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// attackSource is the loopback address attacker i sends from: 127.0.1.x,
// never the legitimate clients' 127.0.0.1, as in a real network where the
// attacker's address is not the gateway's.
func attackSource(i, sources int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%sources))}
}

func dialFrom(ctx context.Context, src *net.TCPAddr, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: src}
	return d.DialContext(ctx, "tcp", addr)
}

// pacer spaces events: at most one per every, across goroutines.
type pacer struct {
	mu    sync.Mutex
	next  time.Time
	every time.Duration
}

func newPacer(perSecond float64) *pacer {
	return &pacer{every: time.Duration(float64(time.Second) / perSecond)}
}

// wait blocks until the caller's turn; false if ctx ended first.
func (p *pacer) wait(ctx context.Context) bool {
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(p.every)
	p.mu.Unlock()
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// holdFlood keeps conns connections open from sources addresses: when
// the server closes one, another is opened. Opening is paced at ramp per
// second until conns have been opened, then at reopen per second: the
// attack holds slots, it does not burn CPU on handshakes (which no
// admission policy can make free; see docs/SECURITY.md).
func holdFlood(conns, sources int, ramp, reopen float64, open opener) func(context.Context, *target, *attackStats) {
	return func(ctx context.Context, t *target, st *attackStats) {
		var wg sync.WaitGroup
		defer wg.Wait()
		var alive atomic.Int64 // dialling or held
		tick := time.NewTicker(time.Duration(float64(time.Second) / ramp))
		defer tick.Stop()
		ramping := true
		for i := 0; ; {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if ramping && st.opened.Load() >= int64(conns) {
				ramping = false
				tick.Reset(time.Duration(float64(time.Second) / reopen))
			}
			if alive.Load() >= int64(conns) {
				continue
			}
			alive.Add(1)
			src := attackSource(i, sources)
			i++
			wg.Go(func() {
				defer alive.Add(-1)
				c, err := open(ctx, t, src)
				if err != nil {
					st.failed.Add(1)
					return
				}
				st.up()
				stop := context.AfterFunc(ctx, func() { c.Close() })
				_, _ = io.Copy(io.Discard, c) // until the server closes it
				stop()
				c.Close()
				st.open.Add(-1)
			})
		}
	}
}

// opener opens one attacking connection to t from src.
type opener func(ctx context.Context, t *target, src *net.TCPAddr) (net.Conn, error)

// tlsGet opens an anonymous TLS connection, sends one HTTP/1.1 request
// and reads the answer, leaving the connection open.
func tlsGet(path string, want int, header string) opener {
	return func(ctx context.Context, d *target, src *net.TCPAddr) (net.Conn, error) {
		raw, err := dialFrom(ctx, src, d.endpoints["https"])
		if err != nil {
			return nil, err
		}
		c := tls.Client(raw, d.tlsConfig(false))
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n"+header+"\r\n"); err != nil {
			c.Close()
			return nil, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			c.Close()
			return nil, fmt.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
		_ = c.SetDeadline(time.Time{})
		return c, nil
	}
}

// rawTCP connects and sends nothing.
func rawTCP(ctx context.Context, d *target, src *net.TCPAddr) (net.Conn, error) {
	return dialFrom(ctx, src, d.endpoints["https"])
}

// h2ZeroWindow opens an anonymous HTTP/2 connection whose initial stream
// window is 0, asks for the gateway's /health on as many streams as it
// may (and more), and keeps asking: no answer can ever be sent.
func h2ZeroWindow(streams int) opener {
	return func(ctx context.Context, d *target, src *net.TCPAddr) (net.Conn, error) {
		raw, err := dialFrom(ctx, src, d.endpoints["https"])
		if err != nil {
			return nil, err
		}
		c := tls.Client(raw, d.tlsConfig(false, "h2"))
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.HandshakeContext(ctx); err != nil || c.ConnectionState().NegotiatedProtocol != "h2" {
			c.Close()
			return nil, errors.Join(err, errors.New("no h2"))
		}
		_ = c.SetDeadline(time.Time{})
		var mu sync.Mutex
		write := func(b []byte) error { mu.Lock(); defer mu.Unlock(); _, err := c.Write(b); return err }
		b := h2Frame([]byte(h2Preface), h2FrameSettings, 0, 0, h2Settings(h2SettingInitialWindowSize, 0, h2SettingEnablePush, 0))
		block := hpackGet("localhost", "/health", "x-aunsorm-mesh", "gateway")
		next := uint32(1)
		for range streams {
			b = h2Frame(b, h2FrameHeaders, h2FlagEndStream|h2FlagEndHeaders, next, block)
			next += 2
		}
		if err := write(b); err != nil {
			c.Close()
			return nil, err
		}
		pr, pw := io.Pipe()
		go func() {
			// Acknowledge the server's settings and pings (or it gives
			// up on us), never open a window, and pass EOF on.
			buf := make([]byte, 0, 16<<10)
			for {
				typ, flags, _, payload, err := h2ReadFrame(c, buf)
				if err != nil || typ == h2FrameGoAway {
					pw.CloseWithError(io.EOF)
					return
				}
				switch {
				case typ == h2FrameSettings && flags&h2FlagAck == 0:
					_ = write(h2Frame(nil, h2FrameSettings, h2FlagAck, 0, nil))
				case typ == h2FramePing && flags&h2FlagAck == 0:
					_ = write(h2Frame(nil, h2FramePing, h2FlagAck, 0, payload))
				}
			}
		}()
		go func() {
			// Open new streams as the server resets the stuck ones.
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				var b []byte
				for range 8 {
					b = h2Frame(b, h2FrameHeaders, h2FlagEndStream|h2FlagEndHeaders, next, block)
					next += 2
				}
				if write(b) != nil {
					return
				}
			}
		}()
		return &pipeConn{Conn: c, r: pr}, nil
	}
}

// pipeConn reads from r (the frame reader's EOF) and closes both.
type pipeConn struct {
	net.Conn
	r *io.PipeReader
}

func (p *pipeConn) Read(b []byte) (int, error) { return p.r.Read(b) }
func (p *pipeConn) Close() error               { p.r.Close(); return p.Conn.Close() }

// plainFlood asks the plain listener for nonce-bound attestations (each
// would cost a signature) and snapshots as fast as rate allows, on
// kept-alive connections, reconnecting whenever the server closes one.
func plainFlood(conns, sources int, rate float64) func(context.Context, *target, *attackStats) {
	return func(ctx context.Context, d *target, st *attackStats) {
		p := newPacer(rate)
		var wg sync.WaitGroup
		for i := range conns {
			wg.Go(func() {
				var c net.Conn
				var br *bufio.Reader
				defer func() {
					if c != nil {
						c.Close()
					}
				}()
				for n := 0; p.wait(ctx); n++ {
					if c == nil {
						var err error
						if c, err = dialFrom(ctx, attackSource(i, sources), d.endpoints["http"]); err != nil {
							st.failed.Add(1)
							c = nil
							continue
						}
						st.up()
						br = bufio.NewReader(c)
					}
					path, kind := "/attestation", "snapshot"
					if n%2 == 0 {
						kind = "nonce"
						nonce := make([]byte, 16)
						_, _ = rand.Read(nonce)
						path += "?nonce=" + hex.EncodeToString(nonce)
					}
					_ = c.SetDeadline(time.Now().Add(3 * time.Second))
					_, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: node\r\n\r\n")
					var resp *http.Response
					if err == nil {
						resp, err = http.ReadResponse(br, nil)
					}
					if err != nil {
						c.Close()
						c = nil
						st.open.Add(-1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					st.code(kind, resp.StatusCode)
					if resp.Close {
						c.Close()
						c = nil
						st.open.Add(-1)
					}
				}
			})
		}
		wg.Wait()
	}
}
