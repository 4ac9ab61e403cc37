package ntp

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

var gpsRef = [4]byte{'G', 'P', 'S', 0}

func lockedStatus() Status {
	return Status{Synchronized: true, Stratum: 1, RefID: gpsRef, RefTime: time.Now().Add(-time.Second),
		RootDispersion: 10 * time.Microsecond}
}

// startServer serves cfg until the test ends and checks that Serve returns
// nil on shutdown.
func startServer(t testing.TB, cfg Config, clk offsetClock, status func() Status) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := NewServer(cfg, clk, status, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	testbin.Serve(t, "server", s.Serve)
	return s
}

func dial(t testing.TB, s *Server) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, s.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatalf("dial %v: %v", s.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends pkt and returns the raw reply, or nil after timeout.
func exchange(t testing.TB, c *net.UDPConn, pkt []byte, timeout time.Duration) []byte {
	t.Helper()
	if _, err := c.Write(pkt); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	n, err := c.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		t.Fatalf("read: %v", err)
	}
	return buf[:n]
}

// eventually returns the first snapshot for which ok holds, or the last one
// after two seconds: workers publish counters after sending a batch, so a
// client may see a reply before the counters that go with it.
func eventually(s *Server, ok func(Stats) bool) Stats {
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := s.Stats()
		if ok(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(time.Millisecond)
	}
}

func TestServeAnswersClients(t *testing.T) {
	const off = 2500 * time.Microsecond
	const slack = 300 * time.Microsecond
	synced := atomic.Bool{}
	synced.Store(true)
	status := func() Status {
		st := lockedStatus()
		st.Synchronized = synced.Load()
		return st
	}
	s := startServer(t, Config{Workers: 2}, offsetClock{off: off}, status)
	c := dial(t, s)
	tests := []struct {
		name        string
		synced      bool
		pkt         []byte
		wantVersion uint8
		wantLeap    uint8
		wantStratum uint8
		wantRefID   [4]byte
	}{
		{"v4", true, request(4, ModeClient, 0x1111, nil), 4, LeapNoWarning, 1, gpsRef},
		{"v3", true, request(3, ModeClient, 0x2222, nil), 3, LeapNoWarning, 1, gpsRef},
		{"extension field not echoed", true, request(4, ModeClient, 0x3333, extField(0x0104, 68)), 4, LeapNoWarning, 1, gpsRef},
		{"MAC not echoed", true, request(3, ModeClient, 0x4444, make([]byte, macMD5)), 3, LeapNoWarning, 1, gpsRef},
		{"unsynchronized", false, request(4, ModeClient, 0x5555, nil), 4, LeapAlarm, 0, KissInit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synced.Store(tc.synced)
			before := time.Now()
			raw := exchange(t, c, tc.pkt, 2*time.Second)
			after := time.Now()
			if len(raw) != HeaderLen {
				t.Fatalf("reply is %d bytes, want %d", len(raw), HeaderLen)
			}
			var h Header
			if err := h.Unmarshal(raw); err != nil {
				t.Fatal(err)
			}
			var req Header
			_ = req.Unmarshal(tc.pkt)
			if h.Version != tc.wantVersion || h.Mode != ModeServer || h.Leap != tc.wantLeap ||
				h.Stratum != tc.wantStratum || h.RefID != tc.wantRefID || h.OrigTime != req.TxTime {
				t.Fatalf("reply %+v, want version %d mode 4 leap %d stratum %d refid %q origin %#x",
					h, tc.wantVersion, tc.wantLeap, tc.wantStratum, tc.wantRefID, req.TxTime)
			}
			rx, tx := h.RxTime.Time(before), h.TxTime.Time(before)
			lo, hi := before.Add(off-slack), after.Add(off+slack)
			if rx.Before(lo) || rx.After(hi) || tx.Before(rx) || tx.After(hi) {
				t.Errorf("rx %v tx %v, want lo %v <= rx <= tx <= hi %v (served clock is host %+v)",
					rx.Format(time.StampMicro), tx.Format(time.StampMicro), lo.Format(time.StampMicro), hi.Format(time.StampMicro), off)
			}
		})
	}
	st := eventually(s, func(st Stats) bool { return st.Replies == uint64(len(tests)) })
	if st.Replies != uint64(len(tests)) || st.Unsynchronized != 1 || st.NoKernelTimestamp != 0 {
		t.Errorf("stats %+v, want %d replies, 1 unsynchronized, all kernel-stamped", st, len(tests))
	}
}

func TestServeDropsWithoutReply(t *testing.T) {
	s := startServer(t, Config{Workers: 1}, offsetClock{}, lockedStatus)
	c := dial(t, s)
	tests := []struct {
		name   string
		pkt    []byte
		reason DropReason
	}{
		{"short", request(4, ModeClient, 1, nil)[:40], DropShort},
		{"one byte", []byte{0x1b}, DropShort},
		{"version 2", request(2, ModeClient, 1, nil), DropVersion},
		{"mode 6 control", request(4, ModeControl, 1, nil), DropMode},
		{"mode 7 monlist", append(request(2, ModePrivate, 1, nil)[:8], make([]byte, 184)...), DropVersion},
		{"mode 7 v3", request(3, ModePrivate, 1, nil), DropMode},
		{"symmetric active", request(4, ModeSymmetricActive, 1, nil), DropMode},
		{"server mode loop", request(4, ModeServer, 1, nil), DropMode},
		{"bad extension length", request(4, ModeClient, 1, extField(1, 13)), DropMalformed},
		{"oversized", request(4, ModeClient, 1, extField(1, 4000)), DropTruncated},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats().Drops[tc.reason]
			if _, err := c.Write(tc.pkt); err != nil {
				t.Fatal(err)
			}
			// A good request sent after the bad one is answered first:
			// the bad one got no reply.
			good := request(4, ModeClient, Timestamp(0x7000+i), nil)
			raw := exchange(t, c, good, 2*time.Second)
			var h Header
			if err := h.Unmarshal(raw); err != nil || h.OrigTime != Timestamp(0x7000+i) {
				t.Fatalf("first reply %x (err %v) does not answer the good request", raw, err)
			}
			st := eventually(s, func(st Stats) bool { return st.Drops[tc.reason] > before })
			if got := st.Drops[tc.reason]; got != before+1 {
				t.Errorf("drops[%s] = %d, want %d", tc.reason, got, before+1)
			}
		})
	}
}

func TestServeRateLimitSendsKoD(t *testing.T) {
	s := startServer(t, Config{Workers: 1, RateLimit: RateLimit{Interval: time.Hour, Burst: 2, KoDInterval: time.Hour}},
		offsetClock{}, lockedStatus)
	c := dial(t, s)
	wants := []string{"reply", "reply", "kod", "none"}
	for i, want := range wants {
		raw := exchange(t, c, request(4, ModeClient, Timestamp(100+i), nil), 300*time.Millisecond)
		got := "none"
		if raw != nil {
			var h Header
			_ = h.Unmarshal(raw)
			got = "reply"
			if h.Stratum == 0 && h.RefID == KissRate && h.Leap == LeapAlarm {
				got = "kod"
			}
			if h.OrigTime != Timestamp(100+i) {
				t.Errorf("request %d: origin %d, want %d", i, h.OrigTime, 100+i)
			}
		}
		if got != want {
			t.Errorf("request %d: %s, want %s", i, got, want)
		}
	}
	st := eventually(s, func(st Stats) bool { return st.Drops[DropRateLimited] == 1 })
	if st.Replies != 2 || st.KoDSent != 1 || st.Drops[DropRateLimited] != 1 {
		t.Errorf("stats %+v, want 2 replies, 1 KoD, 1 rate-limited drop", st)
	}
}

func TestServeManySocketsShareOnePort(t *testing.T) {
	s := startServer(t, Config{Workers: 4}, offsetClock{}, lockedStatus)
	for i := range 32 {
		c := dial(t, s)
		raw := exchange(t, c, request(4, ModeClient, Timestamp(i+1), nil), 2*time.Second)
		if len(raw) != HeaderLen {
			t.Fatalf("client %d: reply of %d bytes", i, len(raw))
		}
	}
	if got := eventually(s, func(st Stats) bool { return st.Replies == 32 }).Replies; got != 32 {
		t.Errorf("replies = %d, want 32", got)
	}
}

// TestServeDualStack serves the IPv6 wildcard, as the daemon does with
// ":123", and is reached over IPv4 and IPv6 loopback with rate limiting on,
// which keys clients by their v4-mapped or IPv6 address.
func TestServeDualStack(t *testing.T) {
	probe, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	s := startServer(t, Config{Addr: ":0", Workers: 2, RateLimit: RateLimit{Interval: time.Hour, Burst: 1}},
		offsetClock{}, lockedStatus)
	port := s.Addr().(*net.UDPAddr).Port
	tests := []struct {
		name string
		ip   string
	}{
		{"ipv4", "127.0.0.1"},
		{"ipv6", "::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.ParseIP(tc.ip), Port: port})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			kinds := []uint8{}
			for i := range 2 {
				raw := exchange(t, c, request(4, ModeClient, Timestamp(i+1), nil), 2*time.Second)
				var h Header
				if err := h.Unmarshal(raw); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				kinds = append(kinds, h.Stratum)
			}
			if kinds[0] != 1 || kinds[1] != 0 {
				t.Errorf("strata %v, want [1 0] (a reply, then KoD RATE for the same client)", kinds)
			}
		})
	}
}

func TestNewServerRejectsBadConfig(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no port", Config{Addr: "127.0.0.1"}},
		{"negative workers", Config{Addr: ":0", Workers: -1}},
		{"batch too large", Config{Addr: ":0", Batch: 5000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewServer(tc.cfg, offsetClock{}, lockedStatus, log); err == nil {
				t.Errorf("NewServer(%+v) succeeded, want error", tc.cfg)
			}
		})
	}
}

func TestServeHotPathAllocatesNothing(t *testing.T) {
	s := startServer(t, Config{Workers: 1}, offsetClock{}, lockedStatus)
	c := dial(t, s)
	pkt := request(4, ModeClient, 1, nil)
	buf := make([]byte, 128)
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	roundTrip := func() {
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		roundTrip() // warm up the poller and the worker
	}
	// The whole exchange, client included, is measured: receive, parse,
	// rate limit, reply, stamp and send must not allocate.
	if n := testing.AllocsPerRun(2000, roundTrip); n != 0 {
		t.Errorf("round trip allocates %v times, want 0", n)
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	s := startServer(b, Config{Workers: 1, RateLimit: DefaultRateLimit}, offsetClock{}, lockedStatus)
	s.limiter = nil // one client at full speed would be rate limited
	c := dial(b, s)
	pkt := request(4, ModeClient, 1, nil)
	buf := make([]byte, 128)
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(pkt); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
