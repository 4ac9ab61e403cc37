package netsvc

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"
)

// fakeConn is a connection from a chosen address that records its close.
type fakeConn struct {
	net.Conn // nil: only RemoteAddr and Close are used
	name     string
	remote   net.Addr
	closed   bool
}

func (f *fakeConn) RemoteAddr() net.Addr { return f.remote }
func (f *fakeConn) Close() error         { f.closed = true; return nil }

// bench drives an admitter with fake connections named "<source><n>",
// e.g. "a1" from 10.0.0.1 ("a"), "b2" from 10.0.0.2.
type bench struct {
	t     *testing.T
	a     *admitter
	now   time.Time
	conns map[string]*admConn
}

func newBench(t *testing.T, cfg Admission) *bench {
	b := &bench{t: t, a: newAdmitter(cfg), now: time.Unix(1e9, 0), conns: map[string]*admConn{}}
	b.a.now = func() time.Time { return b.now }
	return b
}

// arrive admits name as a TLS connection (or plain) and returns the names
// of the connections evicted for it, or "refused".
func (b *bench) arrive(name string, handshake bool) []string {
	b.t.Helper()
	ip := net.IPv4(10, 0, 0, name[0]-'a'+1)
	c, victims := b.a.admit(&fakeConn{name: name, remote: &net.TCPAddr{IP: ip, Port: 1000}}, handshake)
	var out []string
	for _, v := range victims {
		out = append(out, v.Conn.(*fakeConn).name)
		v.abort()
	}
	if c == nil {
		return append(out, "refused")
	}
	b.conns[name] = c
	b.check()
	return out
}

// check verifies the admitter's invariants.
func (b *bench) check() {
	b.t.Helper()
	a := b.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total != a.handshake+a.anonymous+a.authenticated || a.unauth != a.handshake+a.anonymous {
		b.t.Fatalf("counts: total %d unauth %d handshake %d anonymous %d authenticated %d",
			a.total, a.unauth, a.handshake, a.anonymous, a.authenticated)
	}
	sum, maxN := 0, 0
	for k, s := range a.sources {
		n := 0
		for _, l := range s.tiers {
			for c := l.head; c != nil; c = c.next {
				if c.src != s || c.class == classGone || c.class == classAuthenticated {
					b.t.Fatalf("source %v lists a connection of class %d", k, c.class)
				}
				n++
			}
		}
		if n != s.n || n == 0 {
			b.t.Fatalf("source %v: n %d, lists hold %d", k, s.n, n)
		}
		sum += n
		maxN = max(maxN, n)
	}
	if sum != a.unauth || maxN != a.maxN {
		b.t.Fatalf("sources hold %d (max %d), unauth %d (maxN %d)", sum, maxN, a.unauth, a.maxN)
	}
	if a.total > a.cfg.MaxConns || a.unauth > a.cfg.MaxUnauthenticated || maxN > a.cfg.MaxUnauthenticatedPerSource {
		b.t.Fatalf("over a limit: total %d unauth %d max per source %d; %+v", a.total, a.unauth, maxN, a.cfg)
	}
}

func (b *bench) do(step string) []string {
	b.t.Helper()
	var op, name string
	fmt.Sscan(step, &op, &name)
	c := b.conns[name]
	b.now = b.now.Add(time.Millisecond)
	switch op {
	case "wait": // long enough for a silent connection to count as one
		b.now = b.now.Add(2 * silentGrace)
	case "tls":
		return b.arrive(name, true)
	case "plain":
		return b.arrive(name, false)
	case "hello": // ClientHello received
		b.a.heard(c)
	case "cert", "anon": // handshake done with or without a certificate
		if !b.a.handshaken(c, op == "cert") {
			return []string{"gone"}
		}
	case "active":
		b.a.connState(c, http.StateActive)
	case "idle":
		b.a.connState(c, http.StateIdle)
	case "close":
		c.Close()
		c.Close() // twice: the slot is freed once
	default:
		b.t.Fatalf("unknown step %q", step)
	}
	b.check()
	return nil
}

func TestAdmissionEviction(t *testing.T) {
	small := Admission{MaxConns: 6, MaxUnauthenticated: 4, MaxUnauthenticatedPerSource: 2}
	tests := []struct {
		name  string
		cfg   Admission
		steps []string
		// last is what the last step evicted (or "refused", "gone").
		last []string
	}{
		{"under the limits nothing is evicted", small,
			[]string{"tls a1", "tls b1", "tls c1"}, nil},
		{"a source over its limit loses its own oldest", small,
			[]string{"tls a1", "tls b1", "tls a2", "tls a3"}, []string{"a1"}},
		{"the pool full: the source with the most loses its oldest", small,
			[]string{"tls b1", "tls a1", "tls a2", "tls c1", "wait", "tls d1"}, []string{"a1"}},
		{"a silent connection goes before an idle one", small,
			[]string{"tls a1", "anon a1", "tls a2", "wait", "tls a3"}, []string{"a2"}},
		{"a new connection not heard from yet is not silent", small,
			[]string{"tls a1", "anon a1", "tls a2", "tls a3"}, []string{"a1"}},
		{"a new connection goes after older handshakes", small,
			[]string{"tls a1", "hello a1", "tls a2", "tls a3"}, []string{"a1"}},
		{"a new connection goes after older handshakes heard after it came", small,
			[]string{"tls a1", "tls a2", "hello a1", "tls a3"}, []string{"a1"}},
		{"a silent one goes before newer handshakes", small,
			[]string{"tls a1", "tls a2", "hello a2", "tls a3"}, []string{"a1"}},
		{"an idle one before a handshake in progress", small,
			[]string{"tls a1", "hello a1", "tls a2", "hello a2", "anon a2", "idle a2", "tls a3"}, []string{"a2"}},
		{"a handshake before a request in flight", small,
			[]string{"tls a1", "anon a1", "active a1", "tls a2", "hello a2", "tls a3"}, []string{"a2"}},
		{"a request in flight is evicted last, but evicted", small,
			[]string{"tls a1", "anon a1", "active a1", "tls a2", "anon a2", "active a2", "tls a3"}, []string{"a1"}},
		{"authenticated connections do not count against the sources", small,
			[]string{"tls a1", "cert a1", "tls a2", "cert a2", "tls a3", "tls a4"}, nil},
		{"all slots authenticated: refused", Admission{MaxConns: 2},
			[]string{"tls a1", "cert a1", "tls b1", "cert b1", "tls c1"}, []string{"refused"}},
		{"all slots taken: an unauthenticated one makes room", Admission{MaxConns: 3},
			[]string{"tls a1", "cert a1", "tls b1", "cert b1", "tls c1", "tls d1"}, []string{"c1"}},
		{"evicted during its handshake", small,
			[]string{"tls a1", "tls a2", "tls a3", "cert a1"}, []string{"gone"}},
		{"a closed connection frees its slot once", small,
			[]string{"tls a1", "tls a2", "close a1", "tls a3"}, nil},
		{"plain connections are anonymous from the start", small,
			[]string{"plain a1", "active a1", "plain a2", "plain a3"}, []string{"a2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBench(t, tt.cfg)
			var got []string
			for _, s := range tt.steps {
				got = b.do(s)
			}
			if !slices.Equal(got, tt.last) {
				t.Errorf("last step %q evicted %v, want %v", tt.steps[len(tt.steps)-1], got, tt.last)
			}
		})
	}
}

func TestAdmissionStats(t *testing.T) {
	b := newBench(t, Admission{MaxConns: 4, MaxUnauthenticated: 2, MaxUnauthenticatedPerSource: 1})
	// b2 evicts b1 (its source's limit); d1, e1 and z1 evict b2, c1 and
	// d1 (the pool's limit); g1 evicts e1 (all four slots taken).
	steps := []string{"tls a1", "cert a1", "tls b1", "tls b2", "tls c1", "anon c1", "tls d1", "tls e1", "anon e1",
		"tls z1", "cert z1", "tls f1", "tls g1"}
	for _, s := range steps {
		b.do(s)
	}
	st := b.a.stats()
	if st.Handshake != 2 || st.Anonymous != 0 || st.Authenticated != 2 || st.Accepted != 9 {
		t.Errorf("now: %+v; want 2 handshakes, 0 anonymous, 2 authenticated, 9 accepted", st)
	}
	want := map[string]uint64{"source_limit": 1, "unauthenticated_limit": 3, "connection_limit": 1}
	if !maps.Equal(st.Evicted, want) || st.AdmittedAnonymous != 2 || st.AdmittedAuthenticated != 2 || st.Refused != 0 {
		t.Errorf("counters: %+v; want evictions %v, 2 anonymous and 2 authenticated admitted", st, want)
	}
}

// TestAdmissionRandom runs random steps and checks the invariants after
// each: counts agree, no limit is exceeded, closes never double-free.
func TestAdmissionRandom(t *testing.T) {
	b := newBench(t, Admission{MaxConns: 20, MaxUnauthenticated: 10, MaxUnauthenticatedPerSource: 3})
	r := rand.New(rand.NewPCG(1, 2))
	ops := []string{"hello", "cert", "anon", "active", "idle", "close", "wait"}
	for i := range 20000 {
		if len(b.conns) == 0 || r.IntN(3) == 0 {
			kind := "tls"
			if r.IntN(5) == 0 {
				kind = "plain"
			}
			b.do(fmt.Sprintf("%s %c%d", kind, 'a'+r.IntN(6), i))
			continue
		}
		names := make([]string, 0, len(b.conns))
		for n := range b.conns {
			names = append(names, n)
		}
		slices.Sort(names)
		name := names[r.IntN(len(names))]
		op := ops[r.IntN(len(ops))]
		b.do(op + " " + name)
		if op == "wait" {
			continue
		}
		if op == "close" || b.conns[name].class == classGone {
			delete(b.conns, name)
		}
	}
}
