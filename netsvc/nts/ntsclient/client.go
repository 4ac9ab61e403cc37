package ntsclient

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts/siv"
)

// Defaults of Config.
const (
	DefaultKETimeout  = 5 * time.Second
	DefaultNTPTimeout = 2 * time.Second
)

// ErrUnsynchronized: the server's reply was authentic but the server says
// it is not synchronised (leap indicator 3, stratum 0 or above 15): its
// time is no evidence.
var ErrUnsynchronized = errors.New("ntsclient: server not synchronised")

// Config configures a Client.
type Config struct {
	// Addr is the NTS-KE server, host:port (required).
	Addr string
	// ServerName is the name the server's certificate must carry
	// (default: the host of Addr).
	ServerName string
	// RootCAs are the trust anchors (nil: the system roots).
	RootCAs *x509.CertPool
	// Now reads the clock being measured (required): T1 and T4.
	Now func() time.Time
	// Rand is the entropy of identifiers, nonces and transmit
	// timestamps (default crypto/rand.Reader).
	Rand io.Reader
	// KETimeout bounds one NTS-KE session, NTPTimeout the wait for one
	// reply (defaults DefaultKETimeout, DefaultNTPTimeout). The context
	// of Query bounds both.
	KETimeout, NTPTimeout time.Duration
	// NTPAddr, if set, is where NTP requests go whatever the KE server
	// says (a test's tampering proxy, or a NAT in front of the server).
	NTPAddr string
}

// Client is an NTS association with one server. It is safe for
// concurrent use; queries are serialised.
type Client struct {
	cfg Config

	mu      sync.Mutex
	ke      *keSession // nil before the first KE and after a NAK
	c2s     *siv.AEAD
	s2c     *siv.AEAD
	cookies [][]byte
	stats   Stats
}

// Stats counts what a Client did.
type Stats struct {
	// KESessions is the number of successful NTS-KE sessions, KEFailures
	// of failed ones.
	KESessions, KEFailures uint64
	// Replies counts authenticated replies, NAKs the NTS NAKs received,
	// Rejected the packets dropped by VerifyReply for any other reason.
	Replies, NAKs, Rejected uint64
	// LastKEDuration is how long the last successful NTS-KE took.
	LastKEDuration time.Duration
}

// New checks cfg and returns a Client. It does no I/O: the first Query
// runs NTS-KE.
func New(cfg Config) (*Client, error) {
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("ntsclient: NTS-KE address %q: %w", cfg.Addr, err)
	}
	if cfg.Now == nil {
		return nil, errors.New("ntsclient: no clock (Config.Now)")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.KETimeout <= 0 {
		cfg.KETimeout = DefaultKETimeout
	}
	if cfg.NTPTimeout <= 0 {
		cfg.NTPTimeout = DefaultNTPTimeout
	}
	return &Client{cfg: cfg}, nil
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Cookies returns how many unspent cookies the client holds.
func (c *Client) Cookies() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cookies)
}

// Result is one authenticated exchange.
type Result struct {
	// T1 (request sent) and T4 (reply received) are read from
	// Config.Now; T2 (request received) and T3 (reply sent) are the
	// server's.
	T1, T2, T3, T4 time.Time
	// Offset is server time minus client time, Delay the round trip
	// less the server's processing (RFC 5905 section 8).
	Offset, Delay time.Duration
	// RootDelay and RootDispersion are the server's, as sent.
	RootDelay, RootDispersion time.Duration
	Stratum                   uint8
	Leap                      uint8
	RefID                     [4]byte
	// NTPAddr is the NTP server that answered.
	NTPAddr string
	// KE is the duration of the NTS-KE this query needed (0 if it spent
	// a cookie it held).
	KE time.Duration
}

// RootDistance is the server's root delay/2 + root dispersion: the bound
// on its own error it vouches for.
func (r *Result) RootDistance() time.Duration { return r.RootDelay/2 + r.RootDispersion }

// SetRootCAs replaces the trust anchors (nil: the system roots), as a
// reload that rotates them does. When they change, the keys and cookies
// of the session the old anchors vouched for are dropped, so the next
// query runs NTS-KE and the server is checked against the new ones: an
// operator who withdraws a CA withdraws its sessions too. Anchors equal
// to the current ones keep the session.
func (c *Client) SetRootCAs(roots *x509.CertPool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if SameRoots(c.cfg.RootCAs, roots) {
		return
	}
	c.cfg.RootCAs = roots
	c.forget()
}

// SameRoots says whether a and b are the same trust anchors, nil (the
// system roots) only being the same as nil.
func SameRoots(a, b *x509.CertPool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

// KeyExchange runs NTS-KE now, replacing the keys and cookies held.
func (c *Client) KeyExchange(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.keyExchangeLocked(ctx)
	return err
}

func (c *Client) keyExchangeLocked(ctx context.Context) (time.Duration, error) {
	start := time.Now() // duration of the session, not a time reading
	s, err := keyExchange(ctx, c.cfg.Addr, c.cfg.ServerName, c.cfg.RootCAs, c.cfg.KETimeout)
	if err != nil {
		c.stats.KEFailures++
		return 0, err
	}
	c2s, err := siv.New(s.keys.C2S[:])
	if err != nil {
		return 0, err
	}
	s2c, err := siv.New(s.keys.S2C[:])
	if err != nil {
		return 0, err
	}
	clear(s.keys.C2S[:])
	clear(s.keys.S2C[:])
	if c.cfg.NTPAddr != "" {
		s.ntpAddr = c.cfg.NTPAddr
	}
	c.ke, c.c2s, c.s2c, c.cookies = s, c2s, s2c, s.resp.Cookies
	d := time.Since(start)
	c.stats.KESessions++
	c.stats.LastKEDuration = d
	return d, nil
}

// forget drops the keys and cookies: the next query runs NTS-KE.
func (c *Client) forget() {
	c.ke, c.c2s, c.s2c, c.cookies = nil, nil, nil, nil
}

// Query makes one authenticated measurement: NTS-KE first if the client
// holds no cookie, then a request and its verified reply. After an NTS
// NAK it redoes NTS-KE and asks once more.
func (c *Client) Query(ctx context.Context) (*Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ke time.Duration
	for attempt := 0; ; attempt++ {
		if len(c.cookies) == 0 {
			c.forget()
			d, err := c.keyExchangeLocked(ctx)
			if err != nil {
				return nil, err
			}
			ke += d
		}
		res, err := c.exchange(ctx)
		if errors.Is(err, ErrNAK) && attempt == 0 {
			c.forget()
			continue
		}
		if err != nil {
			return nil, err
		}
		res.KE = ke
		return res, nil
	}
}

// exchange sends one request and waits for its verified reply, dropping
// anything else that arrives.
func (c *Client) exchange(ctx context.Context) (*Result, error) {
	addr := c.ke.ntpAddr
	cookie := c.cookies[0]
	c.cookies = c.cookies[1:]
	placeholders := MaxCookies - 1 - len(c.cookies)

	var ent [UniqueIDLen + 8 + NonceLen]byte
	if _, err := io.ReadFull(c.cfg.Rand, ent[:]); err != nil {
		return nil, fmt.Errorf("ntsclient: entropy: %w", err)
	}
	req := BuildRequest(c.c2s, cookie, placeholders, ent[:UniqueIDLen],
		ntp.Timestamp(binary.BigEndian.Uint64(ent[UniqueIDLen:])), ent[UniqueIDLen+8:])

	ctx, cancel := context.WithTimeout(ctx, c.cfg.NTPTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("ntsclient: NTP %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	t1 := c.cfg.Now()
	if _, err := conn.Write(req.Packet); err != nil {
		return nil, fmt.Errorf("ntsclient: NTP %s: send: %w", addr, err)
	}
	buf := make([]byte, 2048)
	var lastErr error
	for {
		n, err := conn.Read(buf)
		t4 := c.cfg.Now()
		if err != nil {
			if lastErr != nil {
				return nil, fmt.Errorf("ntsclient: NTP %s: no authentic reply: %w (%v)", addr, lastErr, err)
			}
			return nil, fmt.Errorf("ntsclient: NTP %s: %w", addr, err)
		}
		rep, err := VerifyReply(buf[:n], &req, c.s2c)
		if errors.Is(err, ErrNAK) {
			c.stats.NAKs++
			return nil, fmt.Errorf("ntsclient: NTP %s: %w", addr, err)
		}
		if err != nil {
			c.stats.Rejected++
			lastErr = err
			continue
		}
		c.stats.Replies++
		c.cookies = append(c.cookies, rep.Cookies...)
		if len(c.cookies) > MaxCookies {
			c.cookies = c.cookies[len(c.cookies)-MaxCookies:]
		}
		h := &rep.Header
		if h.Leap == ntp.LeapAlarm || h.Stratum == 0 || h.Stratum > 15 {
			return nil, fmt.Errorf("ntsclient: NTP %s: %w (leap %d, stratum %d)", addr, ErrUnsynchronized, h.Leap, h.Stratum)
		}
		return measure(t1, t4, h, addr), nil
	}
}

// measure computes offset and delay from the four timestamps (RFC 5905
// section 8): offset = ((T2-T1) + (T3-T4)) / 2, delay = (T4-T1) -
// (T3-T2), the delay never below zero.
func measure(t1, t4 time.Time, h *ntp.Header, addr string) *Result {
	t2, t3 := h.RxTime.Time(t1), h.TxTime.Time(t1)
	r := &Result{
		T1: t1, T2: t2, T3: t3, T4: t4,
		Offset:         (t2.Sub(t1) + t3.Sub(t4)) / 2,
		Delay:          max(t4.Sub(t1)-t3.Sub(t2), 0),
		RootDelay:      shortDuration(h.RootDelay),
		RootDispersion: shortDuration(h.RootDispersion),
		Stratum:        h.Stratum,
		Leap:           h.Leap,
		RefID:          h.RefID,
		NTPAddr:        addr,
	}
	return r
}
