package roughtime

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// stepClock is QueryOptions.Now for tests: each reading is step after the
// last, from start. It never reads the wall clock.
type stepClock struct {
	mu   sync.Mutex
	next time.Time
	step time.Duration
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.next
	c.next = c.next.Add(c.step)
	return t
}

func queryCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	t.Cleanup(cancel)
	return ctx
}

// TestQueryServer queries the package's server in both versions, with
// and without SRV, and cross-checks each result with the test's own
// verifier (verify_test.go).
func TestQueryServer(t *testing.T) {
	src := &fakeSource{}
	src.set(epoch.Add(250*time.Millisecond), 3200*time.Nanosecond, true)
	lt := testLongTerm(t, 1)
	s := startServer(t, Config{TimeSource: src, LongTermKey: lt})
	tests := []struct {
		name  string
		v     Version
		noSRV bool
		radi  time.Duration
	}{
		{"draft11 with SRV", VersionDraft11, false, time.Second},
		{"draft11 without SRV", VersionDraft11, true, time.Second},
		{"google", VersionGoogle, false, 4 * time.Microsecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &stepClock{next: epoch.Add(-time.Hour), step: 30 * time.Millisecond}
			res, err := Query(queryCtx(t), s.Addr().String(), lt.Public(), tc.v, QueryOptions{Now: clk.now, NoSRV: tc.noSRV})
			if err != nil {
				t.Fatal(err)
			}
			tm, bound, _ := src.Now()
			if res.Version != tc.v || res.Radius != tc.radi {
				t.Fatalf("version %v radius %v", res.Version, res.Radius)
			}
			if tm.Add(-bound).Before(res.Midpoint.Add(-res.Radius)) || tm.Add(bound).After(res.Midpoint.Add(res.Radius)) {
				t.Fatalf("%v ±%v does not cover the source's %v ±%v", res.Midpoint, res.Radius, tm, bound)
			}
			if res.Midpoint.Before(res.NotBefore) || res.Midpoint.After(res.NotAfter) {
				t.Fatalf("midpoint outside the online key's [%v, %v]", res.NotBefore, res.NotAfter)
			}
			// One request, two readings of the injected clock.
			if !res.Sent.Equal(epoch.Add(-time.Hour)) || res.RTT != 30*time.Millisecond || !res.Received.Equal(res.Sent.Add(res.RTT)) {
				t.Fatalf("sent %v received %v rtt %v", res.Sent, res.Received, res.RTT)
			}
			if want := res.Midpoint.Sub(epoch.Add(-time.Hour + 15*time.Millisecond)); res.Offset() != want {
				t.Fatalf("offset %v, want %v", res.Offset(), want)
			}
			if len(res.Request) != MinRequestSize || len(res.Reply) >= len(res.Request) {
				t.Fatalf("request %d bytes, reply %d", len(res.Request), len(res.Reply))
			}
			req, err := ParseRequest(res.Request)
			if err != nil {
				t.Fatal(err)
			}
			if wantSRV := tc.v == VersionDraft11 && !tc.noSRV; (req.SRV != nil) != wantSRV || (wantSRV && !bytes.Equal(req.SRV, srvHash(lt.Public()))) {
				t.Fatalf("SRV %x", req.SRV)
			}
			ref, err := verifyReply(tc.v, res.Reply, lt.Public(), req.Nonce)
			if err != nil {
				t.Fatalf("the test's verifier refuses what Query accepted: %v", err)
			}
			if !bytes.Equal(ref.online, res.OnlineKey) || ref.index != res.Index || ref.radi*uint64(tc.v.unit()) != uint64(res.Radius) ||
				!time.Unix(0, 0).Add(time.Duration(ref.midp)*tc.v.unit()).Equal(res.Midpoint) ||
				!time.Unix(0, 0).Add(time.Duration(ref.mint)*tc.v.unit()).Equal(res.NotBefore) ||
				!time.Unix(0, 0).Add(time.Duration(ref.maxt)*tc.v.unit()).Equal(res.NotAfter) {
				t.Fatalf("verifiers disagree: %+v vs %+v", ref, res)
			}
		})
	}
}

// TestQueryWrongKey: with SRV the server stays silent (and says why in
// its counters); without it, the delegation check names the mismatch.
func TestQueryWrongKey(t *testing.T) {
	src := &fakeSource{}
	src.set(epoch, time.Millisecond, true)
	s := startServer(t, Config{TimeSource: src, LongTermKey: testLongTerm(t, 1)})
	wrong := testLongTerm(t, 2).Public()
	tests := []struct {
		name  string
		v     Version
		noSRV bool
		want  string
	}{
		{"draft11 with SRV", VersionDraft11, false, "no reply"},
		{"draft11 without SRV", VersionDraft11, true, "delegation signature invalid: wrong long-term key?"},
		{"google", VersionGoogle, false, "delegation signature invalid: wrong long-term key?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Wait only bounds the silent case; it asserts nothing.
			_, err := Query(queryCtx(t), s.Addr().String(), wrong, tc.v, QueryOptions{NoSRV: tc.noSRV, Attempts: 1, Wait: 300 * time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	waitFor(t, "the SRV drop counted", func() bool { return s.Stats().Dropped[DropWrongServer] == 1 })
}

// signedReplies returns a batch of three requests of v and their replies,
// signed by an online key lt delegated (from epoch, for an hour).
func signedReplies(t testing.TB, v Version, lt LongTermSigner, seed byte) (reqs, replies [][]byte) {
	t.Helper()
	ok := fixedOnlineKey(t, lt, epoch)
	var nonces [][]byte
	for i := range 3 {
		n := nonceOf(v, seed+byte(i))
		req, err := newRequest(v, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, req)
		nonces = append(nonces, n)
	}
	midp, radi, _ := quantise(v, epoch.Add(time.Minute), time.Millisecond)
	replies, err := signBatch(v, nonces, midp, radi, ok)
	if err != nil {
		t.Fatal(err)
	}
	return reqs, replies
}

// valueAt returns where value, a slice of msg, starts in msg.
func valueAt(t *testing.T, msg, value []byte) int {
	t.Helper()
	for i := range msg {
		if &msg[i] == &value[0] {
			return i
		}
	}
	t.Fatal("value is not inside the message")
	return 0
}

// locate returns the offset in reply of the value at path (tags into
// nested messages); an empty path is the top-level message itself.
func locate(t *testing.T, v Version, reply []byte, path ...Tag) int {
	t.Helper()
	body := reply
	if v == VersionDraft11 {
		body = reply[12:]
	}
	cur := body
	for _, tag := range path {
		m, err := ParseMessage(cur)
		if err != nil {
			t.Fatal(err)
		}
		val, ok := m.Get(tag)
		if !ok {
			t.Fatalf("no %v", tag)
		}
		cur = val
	}
	return valueAt(t, reply, cur)
}

// tagAt returns the offset in reply of tag's entry in the top-level
// header.
func tagAt(t *testing.T, v Version, reply []byte, tag Tag) int {
	t.Helper()
	body := reply
	if v == VersionDraft11 {
		body = reply[12:]
	}
	n := int(binary.LittleEndian.Uint32(body))
	for i := range n {
		if Tag(binary.LittleEndian.Uint32(body[4*n+4*i:])) == tag {
			return len(reply) - len(body) + 4*n + 4*i
		}
	}
	t.Fatalf("no tag %v", tag)
	return 0
}

// TestVerifyReplyTamper flips one byte in each part of a genuine reply
// (the middle one of a batch of three, so PATH has two hashes) and checks
// that verification fails naming that part.
func TestVerifyReplyTamper(t *testing.T) {
	lt := testLongTerm(t, 1)
	type tamper struct {
		name string
		at   func(t *testing.T, v Version, reply []byte) int
		want string
	}
	val := func(path ...Tag) func(*testing.T, Version, []byte) int {
		return func(t *testing.T, v Version, reply []byte) int { return locate(t, v, reply, path...) }
	}
	common := []tamper{
		{"CERT SIG", val(TagCERT, TagSIG), "delegation signature invalid"},
		{"DELE PUBK", val(TagCERT, TagDELE, TagPUBK), "delegation signature invalid"},
		{"DELE MINT", val(TagCERT, TagDELE, TagMINT), "delegation signature invalid"},
		{"DELE MAXT", val(TagCERT, TagDELE, TagMAXT), "delegation signature invalid"},
		{"SIG", val(TagSIG), "response signature invalid"},
		{"SREP ROOT", val(TagSREP, TagROOT), "response signature invalid"},
		{"SREP MIDP", val(TagSREP, TagMIDP), "response signature invalid"},
		{"SREP RADI", val(TagSREP, TagRADI), "response signature invalid"},
		{"PATH first hash", val(TagPATH), "Merkle PATH"},
		{"INDX low bit", val(TagINDX), "Merkle PATH"},
		{"INDX high byte", func(t *testing.T, v Version, r []byte) int { return locate(t, v, r, TagINDX) + 3 }, "beyond a PATH"},
		{"INDX tag", func(t *testing.T, v Version, r []byte) int { return tagAt(t, v, r, TagINDX) }, `no "INDX"`},
		// The header then reads otherwise, failing one check or another.
		{"header count", func(t *testing.T, v Version, r []byte) int { return locate(t, v, r) }, "invalid reply"},
	}
	ietf := []tamper{
		{"frame magic", func(*testing.T, Version, []byte) int { return 3 }, "not framed"},
		{"frame length", func(*testing.T, Version, []byte) int { return 8 }, "frame says"},
		{"VER", val(TagVER), "version"},
		{"NONC", val(TagNONC), "NONC is not the request's nonce"},
	}
	for _, v := range []Version{VersionDraft11, VersionGoogle} {
		reqs, replies := signedReplies(t, v, lt, 0x10)
		if _, err := VerifyReply(reqs[1], replies[1], lt.Public()); err != nil {
			t.Fatalf("%v: genuine reply: %v", v, err)
		}
		cases := common
		if v == VersionDraft11 {
			cases = append(ietf, common...)
		}
		for _, tc := range cases {
			t.Run(v.String()+"/"+tc.name, func(t *testing.T) {
				bad := bytes.Clone(replies[1])
				bad[tc.at(t, v, bad)] ^= 0x01
				_, err := VerifyReply(reqs[1], bad, lt.Public())
				if err == nil || !errors.Is(err, ErrInvalidReply) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
			})
		}
	}
}

// TestVerifyReplyRefuses covers replies that are genuine but not an
// answer to this request under this key.
func TestVerifyReplyRefuses(t *testing.T) {
	lt := testLongTerm(t, 1)
	other := testLongTerm(t, 2)
	for _, v := range []Version{VersionDraft11, VersionGoogle} {
		reqs, replies := signedReplies(t, v, lt, 0x10)
		laterReqs, laterReplies := signedReplies(t, v, lt, 0x40)
		// Another batch's reply with NONC rewritten to ours: signatures
		// hold, only the Merkle path can tell.
		foreign := bytes.Clone(laterReplies[1])
		if v == VersionDraft11 {
			copy(foreign[locate(t, v, foreign, TagNONC):], nonceOf(v, 0x11))
		}
		tests := []struct {
			name       string
			req, reply []byte
			pub        ed25519.PublicKey
			want       string
		}{
			{"wrong long-term key", reqs[1], replies[1], other.Public(), "delegation signature invalid: wrong long-term key?"},
			{"reply to a batch neighbour", reqs[0], replies[1], lt.Public(), map[Version]string{VersionDraft11: "NONC", VersionGoogle: "Merkle PATH"}[v]},
			{"reply from another batch", reqs[1], foreign, lt.Public(), "another batch"},
			{"reply of another version", reqs[1], map[Version][]byte{VersionDraft11: replies[1][12:], VersionGoogle: append([]byte("ROUGHTIM"), replies[1]...)}[v], lt.Public(), map[Version]string{VersionDraft11: "not framed", VersionGoogle: "does not parse"}[v]},
			{"reply larger than the request", reqs[1], append(bytes.Clone(replies[1]), make([]byte, MinRequestSize)...), lt.Public(), "larger than"},
			{"empty reply", reqs[1], nil, lt.Public(), ""},
			{"not a request", replies[1], replies[1], lt.Public(), "not a request"},
			{"short key", reqs[1], replies[1], lt.Public()[:31], "public key"},
		}
		for _, tc := range tests {
			t.Run(v.String()+"/"+tc.name, func(t *testing.T) {
				_, err := VerifyReply(tc.req, tc.reply, tc.pub)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
			})
		}
		if _, err := VerifyReply(laterReqs[1], laterReplies[1], lt.Public()); err != nil {
			t.Fatalf("%v: the later batch's own reply: %v", v, err)
		}
	}
}

// TestVerifyReplyCrossCheck runs VerifyReply and the test's verifier over
// every reply of batches of 1 to 9: both accept, and read the same values.
func TestVerifyReplyCrossCheck(t *testing.T) {
	lt := testLongTerm(t, 1)
	ok := fixedOnlineKey(t, lt, epoch)
	for _, v := range []Version{VersionDraft11, VersionGoogle} {
		for n := 1; n <= 9; n++ {
			var nonces, reqs [][]byte
			for i := range n {
				nonce := nonceOf(v, byte(0x80+i))
				req, err := newRequest(v, nonce, nil)
				if err != nil {
					t.Fatal(err)
				}
				nonces, reqs = append(nonces, nonce), append(reqs, req)
			}
			midp, radi, _ := quantise(v, epoch.Add(time.Second), 2*time.Millisecond)
			replies, err := signBatch(v, nonces, midp, radi, ok)
			if err != nil {
				t.Fatal(err)
			}
			for i := range replies {
				got, err := VerifyReply(reqs[i], replies[i], lt.Public())
				if err != nil {
					t.Fatalf("%v batch %d reply %d: %v", v, n, i, err)
				}
				ref, err := verifyReply(v, replies[i], lt.Public(), nonces[i])
				if err != nil {
					t.Fatalf("%v batch %d reply %d: test verifier: %v", v, n, i, err)
				}
				if got.Index != ref.index || uint64(got.Index) != uint64(i) || got.Radius != time.Duration(ref.radi)*v.unit() ||
					!got.Midpoint.Equal(time.Unix(0, 0).Add(time.Duration(ref.midp)*v.unit())) {
					t.Fatalf("%v batch %d reply %d: %+v vs %+v", v, n, i, got, ref)
				}
			}
		}
	}
}

func TestNewRequest(t *testing.T) {
	lt := testLongTerm(t, 1)
	tests := []struct {
		name  string
		v     Version
		nonce []byte
		srv   []byte
		ok    bool
	}{
		{"draft11", VersionDraft11, nonceOf(VersionDraft11, 1), nil, true},
		{"draft11 with SRV", VersionDraft11, nonceOf(VersionDraft11, 1), SRVValue(lt.Public()), true},
		{"google", VersionGoogle, nonceOf(VersionGoogle, 1), nil, true},
		{"google nonce for draft11", VersionDraft11, nonceOf(VersionGoogle, 1), nil, false},
		{"unknown version", Version(0x80000008), nonceOf(VersionDraft11, 1), nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := newRequest(tc.v, tc.nonce, tc.srv)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v", err)
			}
			if !tc.ok {
				return
			}
			if len(req) != MinRequestSize {
				t.Fatalf("%d bytes", len(req))
			}
			// The server's parser and the test's own reading agree.
			got, err := ParseRequest(req)
			if err != nil || got.Version != tc.v || !bytes.Equal(got.Nonce, tc.nonce) || !bytes.Equal(got.SRV, tc.srv) {
				t.Fatalf("parsed %+v, %v", got, err)
			}
			body := req
			if tc.v == VersionDraft11 {
				body = req[12:]
			}
			m, _, ok := refDecode(body)
			if !ok || !bytes.Equal(m[uint32(TagNONC)], tc.nonce) {
				t.Fatal("the reference decoder reads it otherwise")
			}
			if tc.v == VersionDraft11 && !bytes.Equal(m[uint32(TagVER)], words(uint32(VersionDraft11))) {
				t.Fatalf("VER %x", m[uint32(TagVER)])
			}
		})
	}
	if !bytes.Equal(SRVValue(lt.Public()), srvHash(lt.Public())) {
		t.Fatal("client and server compute SRV differently")
	}
}

// fakeServer answers each request with what handle returns for it (nil:
// no answer), given every request received so far.
func fakeServer(t *testing.T, handle func(reqs [][]byte) []byte) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	go func() {
		var reqs [][]byte
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			reqs = append(reqs, bytes.Clone(buf[:n]))
			if out := handle(reqs); out != nil {
				_, _ = c.WriteToUDP(out, from)
			}
		}
	}()
	return c.LocalAddr().String()
}

// TestQueryRetriesAndTampering drives Query against a scripted server: a
// late answer to the first attempt is accepted and timed from that
// attempt; a tampered answer ends the query with its error.
func TestQueryRetriesAndTampering(t *testing.T) {
	lt := testLongTerm(t, 1)
	ok := fixedOnlineKey(t, lt, epoch)
	answer := func(req []byte, flip int) []byte {
		p, err := ParseRequest(req)
		if err != nil {
			return nil
		}
		midp, radi, _ := quantise(p.Version, epoch.Add(time.Minute), time.Millisecond)
		r, err := signBatch(p.Version, [][]byte{p.Nonce}, midp, radi, ok)
		if err != nil {
			return nil
		}
		if flip >= 0 {
			r[0][flip] ^= 0x80
		}
		return r[0]
	}
	tests := []struct {
		name     string
		handle   func(reqs [][]byte) []byte
		attempts int
		want     string // error; "" for success
		sentAt   int    // clock reading the accepted reply is timed from
	}{
		{"answers at once", func(r [][]byte) []byte { return answer(r[0], -1) }, 3, "", 0},
		{"answers the first attempt late", func(r [][]byte) []byte {
			if len(r) < 2 {
				return nil
			}
			return answer(r[0], -1)
		}, 3, "", 0},
		{"tampered", func(r [][]byte) []byte { return answer(r[0], 40) }, 3, "roughtime: invalid reply", 0},
		{"silent", func([][]byte) []byte { return nil }, 2, "no reply", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, tc.handle)
			clk := &stepClock{next: epoch, step: time.Millisecond}
			res, err := Query(queryCtx(t), addr, lt.Public(), VersionDraft11, QueryOptions{Now: clk.now, Attempts: tc.attempts, Wait: 200 * time.Millisecond})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !res.Sent.Equal(epoch.Add(time.Duration(tc.sentAt) * time.Millisecond)) {
				t.Fatalf("timed from %v", res.Sent)
			}
		})
	}
}

func TestQueryCancelled(t *testing.T) {
	addr := fakeServer(t, func([][]byte) []byte { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := Query(ctx, addr, testLongTerm(t, 1).Public(), VersionGoogle, QueryOptions{Wait: hang})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

// FuzzVerifyReply: arbitrary bytes never verify and never panic, and a
// genuine reply with any single bit flipped never verifies.
func FuzzVerifyReply(f *testing.F) {
	lt := testLongTerm(f, 1)
	type genuine struct{ req, reply []byte }
	var gs []genuine
	for _, v := range []Version{VersionDraft11, VersionGoogle} {
		reqs, replies := signedReplies(f, v, lt, 0x20)
		for i := range reqs {
			gs = append(gs, genuine{reqs[i], replies[i]})
		}
	}
	for _, g := range gs {
		f.Add(g.reply[:len(g.reply)/2], uint32(0))
		f.Add(append(bytes.Clone(g.reply), 0, 0, 0, 0), uint32(7))
	}
	f.Add([]byte("ROUGHTIM\x04\x00\x00\x00\x00\x00\x00\x00"), uint32(100))
	f.Fuzz(func(t *testing.T, data []byte, bit uint32) {
		for _, g := range gs {
			if !bytes.Equal(data, g.reply) {
				if _, err := VerifyReply(g.req, data, lt.Public()); err == nil {
					t.Fatalf("%x verifies", data)
				}
			}
			flipped := bytes.Clone(g.reply)
			i := int(bit % uint32(8*len(flipped)))
			flipped[i/8] ^= 1 << (i % 8)
			if _, err := VerifyReply(g.req, flipped, lt.Public()); err == nil {
				t.Fatalf("bit %d flipped still verifies", i)
			}
		}
	})
}
