package roughtime

import (
	"bytes"
	"crypto/rand"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// fakeSource is a TimeSource the test sets; it never reads the wall clock.
type fakeSource struct {
	mu    sync.Mutex
	t     time.Time
	bound time.Duration
	ok    bool
}

func (f *fakeSource) Now() (time.Time, time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t, f.bound, f.ok
}

func (f *fakeSource) set(t time.Time, bound time.Duration, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t, f.bound, f.ok = t, bound, ok
}

// hang bounds how long a test waits for something that should happen at
// once; it is never an assertion about timing.
const hang = 10 * time.Second

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	testbin.Serve(t, "roughtime", s.Serve)
	return s
}

func dial(t *testing.T, s *Server) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, s.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func randNonce(t *testing.T, v Version) []byte {
	n := make([]byte, v.hashSize())
	if _, err := rand.Read(n); err != nil {
		t.Fatal(err)
	}
	return n
}

// exchange sends req and returns the first reply.
func exchange(t *testing.T, c *net.UDPConn, req []byte) []byte {
	t.Helper()
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	return receive(t, c)
}

func receive(t *testing.T, c *net.UDPConn) []byte {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(hang))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	return buf[:n]
}

// waitFor polls cond until it holds (bounded by hang).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestServeBothVersions(t *testing.T) {
	src := &fakeSource{}
	src.set(epoch.Add(250*time.Millisecond), 3200*time.Nanosecond, true)
	lt := testLongTerm(t, 1)
	s := startServer(t, Config{TimeSource: src, LongTermKey: lt})
	c := dial(t, s)
	tests := []struct {
		v    Version
		srv  []byte
		radi uint64
	}{
		{VersionDraft11, nil, 1},
		{VersionDraft11, srvHash(lt.Public()), 1},
		{VersionGoogle, nil, 4}, // 3.2 µs rounds up to 4
	}
	for _, tc := range tests {
		nonce := randNonce(t, tc.v)
		req := makeRequest(t, tc.v, nonce, tc.srv, 1024)
		reply := exchange(t, c, req)
		if len(reply) > len(req) {
			t.Fatalf("%v: reply %d bytes for a %d-byte request", tc.v, len(reply), len(req))
		}
		got, err := verifyReply(tc.v, reply, lt.Public(), nonce)
		if err != nil {
			t.Fatalf("%v: %v", tc.v, err)
		}
		tm, bound, _ := src.Now()
		if got.radi != tc.radi || !got.covers(tc.v, tm, bound) {
			t.Fatalf("%v: MIDP %d RADI %d do not cover the source", tc.v, got.midp, got.radi)
		}
	}
	// Replies is counted just after the send, so it may trail our read.
	waitFor(t, "3 replies counted", func() bool { return s.Stats().Replies == 3 })
	if st := s.Stats(); st.Requests != 3 || st.Rotations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestNoReply sends requests that must go unanswered, each followed by a
// good one: the first reply read must be the good one's, which shows the
// bad one got none and that the server kept serving.
func TestNoReply(t *testing.T) {
	lt := testLongTerm(t, 1)
	other := testLongTerm(t, 2)
	n32 := randNonce(t, VersionDraft11)
	tests := []struct {
		name     string
		pkt      []byte
		unsynced bool
		reason   DropReason
	}{
		{"unsynchronized", makeRequest(t, VersionDraft11, n32, nil, 1024), true, DropUnsynchronized},
		{"short ietf", makeRequest(t, VersionDraft11, n32, nil, 1020), false, DropShort},
		{"short google", makeRequest(t, VersionGoogle, randNonce(t, VersionGoogle), nil, 1000), false, DropShort},
		{"tiny", []byte("ROUGHTIM"), false, DropShort},
		{"malformed", bytes.Repeat([]byte{0xee}, 1200), false, DropMalformed},
		{"malformed frame", append([]byte("ROUGHTIM\x00\x00\x00\x00"), make([]byte, 1100)...), false, DropMalformed},
		{"draft 08 only", makeRequest(t, VersionDraft11, n32, nil, 1024, 0x80000008), false, DropVersion},
		{"SRV of another key", makeRequest(t, VersionDraft11, n32, srvHash(other.Public()), 1024), false, DropWrongServer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeSource{}
			src.set(epoch, time.Millisecond, !tc.unsynced)
			s := startServer(t, Config{TimeSource: src, LongTermKey: lt})
			c := dial(t, s)
			if _, err := c.Write(tc.pkt); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the drop to be counted", func() bool { return s.Stats().Dropped[tc.reason] == 1 })
			src.set(epoch, time.Millisecond, true)
			good := randNonce(t, VersionDraft11)
			reply := exchange(t, c, makeRequest(t, VersionDraft11, good, nil, 1024))
			if _, err := verifyReply(VersionDraft11, reply, lt.Public(), good); err != nil {
				t.Fatalf("the reply read is not the good request's: %v", err)
			}
			waitFor(t, "the reply counted", func() bool { return s.Stats().Replies == 1 })
			st := s.Stats()
			if st.Requests != 2 {
				t.Fatalf("stats %+v", st)
			}
			for r, n := range st.Dropped {
				if r != tc.reason && n != 0 {
					t.Fatalf("also dropped as %s", r)
				}
			}
		})
	}
}

// TestMerkleBatchOverUDP fills one batch (the window is only a hang
// bound: the batch closes at BatchSize) with IETF and Google requests
// from different sockets; each version gets one signature and each reply
// its own verifying PATH.
func TestMerkleBatchOverUDP(t *testing.T) {
	src := &fakeSource{}
	src.set(epoch, time.Millisecond, true)
	lt := testLongTerm(t, 1)
	vers := []Version{VersionDraft11, VersionDraft11, VersionDraft11, VersionGoogle, VersionGoogle}
	s := startServer(t, Config{TimeSource: src, LongTermKey: lt, BatchSize: len(vers), BatchWindow: time.Hour})
	type sent struct {
		c     *net.UDPConn
		v     Version
		nonce []byte
	}
	var all []sent
	for _, v := range vers {
		c := dial(t, s)
		nonce := randNonce(t, v)
		if _, err := c.Write(makeRequest(t, v, nonce, nil, 1024)); err != nil {
			t.Fatal(err)
		}
		all = append(all, sent{c, v, nonce})
	}
	roots := map[Version][]byte{}
	seen := map[Version]map[uint32]bool{VersionDraft11: {}, VersionGoogle: {}}
	for _, x := range all {
		got, err := verifyReply(x.v, receive(t, x.c), lt.Public(), x.nonce)
		if err != nil {
			t.Fatalf("%v: %v", x.v, err)
		}
		if r, ok := roots[x.v]; ok && !bytes.Equal(r, got.root) {
			t.Fatalf("%v: replies of one batch have different roots", x.v)
		}
		roots[x.v] = got.root
		if seen[x.v][got.index] || got.pathEntries == 0 {
			t.Fatalf("%v: INDX %d repeated or empty PATH", x.v, got.index)
		}
		seen[x.v][got.index] = true
	}
	waitFor(t, "the replies counted", func() bool { return s.Stats().Replies == uint64(len(vers)) })
	if st := s.Stats(); st.Batches != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOnlineKeyRotation(t *testing.T) {
	src := &fakeSource{}
	src.set(epoch, time.Millisecond, true)
	lt := testLongTerm(t, 1)
	s := startServer(t, Config{TimeSource: src, LongTermKey: lt, OnlineKeyLifetime: time.Hour, RotateBefore: 10 * time.Minute})
	c := dial(t, s)
	ask := func(v Version) verified {
		t.Helper()
		nonce := randNonce(t, v)
		got, err := verifyReply(v, exchange(t, c, makeRequest(t, v, nonce, nil, 1024)), lt.Public(), nonce)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := ask(VersionDraft11)
	steps := []struct {
		name    string
		at      time.Time
		rotated bool
	}{
		{"same key within its life", epoch.Add(49 * time.Minute), false},
		{"google reply, same key", epoch.Add(49*time.Minute + time.Second), false},
		{"rotated 10 minutes before MAXT", epoch.Add(50 * time.Minute), true},
		{"clock stepped back before MINT", epoch.Add(-time.Hour), true},
	}
	prev := first
	for i, st := range steps {
		src.set(st.at, time.Millisecond, true)
		v := VersionDraft11
		if i == 1 {
			v = VersionGoogle
		}
		got := ask(v)
		if rotated := !bytes.Equal(got.online, prev.online); rotated != st.rotated {
			t.Fatalf("%s: rotated = %v", st.name, rotated)
		}
		if st.rotated {
			// verifyReply has checked the new DELE's signature by the
			// long-term key; check its window too.
			if want := uint64(st.at.Unix()); got.mint != want || got.maxt != want+3600 {
				t.Fatalf("%s: DELE [%d, %d]", st.name, got.mint, got.maxt)
			}
		}
		prev = got
	}
	if n := s.Stats().Rotations; n != 3 {
		t.Fatalf("%d rotations, want 3", n)
	}
}

// TestReplyLargerThanRequestNotSent drives answer directly with a request
// size no real request can have (they are at least 1024 bytes, replies
// less): the reply must be counted and not sent.
func TestReplyLargerThanRequestNotSent(t *testing.T) {
	src := &fakeSource{}
	src.set(epoch, time.Millisecond, true)
	s, err := NewServer(Config{TimeSource: src, LongTermKey: testLongTerm(t, 1)})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	out, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	to := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	small := pending{req: Request{Version: VersionDraft11, Nonce: nonceOf(VersionDraft11, 1), Size: 200}, from: to}
	big := pending{req: Request{Version: VersionDraft11, Nonce: nonceOf(VersionDraft11, 2), Size: 1024}, from: to}
	s.answer(out, []pending{small, big})
	st := s.Stats()
	if st.Dropped[DropTooLarge] != 1 || st.Replies != 1 {
		t.Fatalf("stats %+v", st)
	}
	got, err := verifyReply(VersionDraft11, receive(t, sink), s.cfg.LongTermKey.Public(), big.req.Nonce)
	if err != nil || got.index != 1 {
		t.Fatalf("the one reply sent is not the big request's: %v", err)
	}
	_ = s.online.key.Close()
}

func TestNewServerConfig(t *testing.T) {
	src := &fakeSource{}
	lt := testLongTerm(t, 1)
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{TimeSource: src, LongTermKey: lt}, true},
		{"no source", Config{LongTermKey: lt}, false},
		{"no key", Config{TimeSource: src}, false},
		{"rotate before too short", Config{TimeSource: src, LongTermKey: lt, RotateBefore: time.Second}, false},
		{"rotate before past lifetime", Config{TimeSource: src, LongTermKey: lt, OnlineKeyLifetime: time.Hour, RotateBefore: time.Hour}, false},
		{"batch too large", Config{TimeSource: src, LongTermKey: lt, BatchSize: maxBatchSize + 1}, false},
		{"negative window", Config{TimeSource: src, LongTermKey: lt, BatchWindow: -1}, false},
	}
	for _, tc := range tests {
		if _, err := NewServer(tc.cfg); (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
		}
	}
}
