package netsvc

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// connClass is where a connection stands in admission.
type connClass uint8

const (
	classHandshake     connClass = iota // TLS handshake in progress
	classAnonymous                      // no verified client certificate
	classAuthenticated                  // a client certificate the TLS config verified
	classGone                           // released or evicted
)

// tier orders a source's unauthenticated connections for eviction (see
// victim). A legitimate client speaks at once, so what has sent nothing
// for silentGrace goes first; a request in flight (the gateway's
// /health) goes last.
type tier uint8

const (
	tierSilent    tier = iota // accepted, not a byte read yet
	tierIdle                  // no request in flight
	tierHandshake             // ClientHello read, handshake not done
	tierActive                // a request in flight
	numTiers
)

// silentGrace is how long a new connection may go without a byte read
// before it ranks as silent. Until then it ranks with the handshakes in
// progress: its ClientHello may be waiting in the socket for the
// handshake goroutine, and a newcomer must not be the first one evicted.
const silentGrace = 500 * time.Millisecond

// Eviction reasons: the limit a newcomer hit.
const (
	evictSource          = iota // its source holds MaxUnauthenticatedPerSource
	evictUnauthenticated        // MaxUnauthenticated are held
	evictConnections            // MaxConns are held
)

// evictReasons are the label values of timenode_connections_evicted_total.
var evictReasons = [...]string{"source_limit", "unauthenticated_limit", "connection_limit"}

// admConn is an admitted connection. The fields after adm are guarded by
// adm.mu.
type admConn struct {
	net.Conn
	adm        *admitter
	class      connClass
	tier       tier
	src        *source   // nil unless unauthenticated
	since      time.Time // when it entered its tier
	admitted   time.Time // when it was accepted
	prev, next *admConn
	heard      atomic.Bool
	once       sync.Once
}

// Read notes the first byte received: from then on the connection is a
// handshake in progress, not a silent one.
func (c *admConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.heard.Load() {
		c.heard.Store(true)
		c.adm.heard(c)
	}
	return n, err
}

// Close frees the connection's slot once, however often it is called.
func (c *admConn) Close() error {
	c.once.Do(func() { c.adm.release(c) })
	return c.Conn.Close()
}

// abort closes the socket at once with a reset: an evicted or refused
// connection should not linger in the kernel either.
func (c *admConn) abort() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Conn.Close()
}

// admittedConn finds the admConn under what net/http hands its hooks.
func admittedConn(c net.Conn) *admConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	ac, _ := c.(*admConn)
	return ac
}

// source is one client address (or IPv6 /64) with unauthenticated
// connections.
type source struct {
	key        netip.Prefix
	n          int // unauthenticated connections
	tiers      [numTiers]connList
	prev, next *source // in the bucket of sources with the same n
}

// admitter keeps one listener's connection accounting.
type admitter struct {
	cfg Admission
	now func() time.Time

	mu                   sync.Mutex
	total                int
	unauth               int // handshake + anonymous
	handshake, anonymous int
	authenticated        int
	sources              map[netip.Prefix]*source
	buckets              []sourceList // buckets[n]: sources holding n unauthenticated slots
	maxN                 int          // highest non-empty bucket

	accepted, refused         atomic.Uint64
	evicted                   [len(evictReasons)]atomic.Uint64
	handshakeTimeouts         atomic.Uint64
	handshakeFailures         atomic.Uint64
	admittedAnon, admittedAut atomic.Uint64
}

func newAdmitter(cfg Admission) *admitter {
	cfg = cfg.withDefaults()
	return &admitter{cfg: cfg, now: time.Now, sources: map[netip.Prefix]*source{},
		buckets: make([]sourceList, cfg.MaxUnauthenticatedPerSource+1)}
}

// admit takes a new connection, as a handshake in progress (TLS) or as
// anonymous (plain). It returns nil when every slot is held by an
// authenticated connection, and the connections evicted to make room,
// which the caller aborts outside the lock.
func (a *admitter) admit(raw net.Conn, handshake bool) (*admConn, []*admConn) {
	key := sourceKey(raw.RemoteAddr())
	a.accepted.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	var victims []*admConn
	if a.total >= a.cfg.MaxConns {
		if a.maxN == 0 {
			a.refused.Add(1)
			return nil, nil
		}
		victims = append(victims, a.evict(a.buckets[a.maxN].head, evictConnections))
	}
	if s := a.sources[key]; s != nil && s.n >= a.cfg.MaxUnauthenticatedPerSource {
		victims = append(victims, a.evict(s, evictSource))
	} else if a.unauth >= a.cfg.MaxUnauthenticated {
		victims = append(victims, a.evict(a.buckets[a.maxN].head, evictUnauthenticated))
	}
	s := a.sources[key] // again: an eviction may have emptied it
	if s == nil {
		s = &source{key: key}
		a.sources[key] = s
	}
	now := a.now()
	c := &admConn{Conn: raw, adm: a, class: classAnonymous, tier: tierIdle, src: s, since: now, admitted: now}
	if handshake {
		c.class, c.tier = classHandshake, tierSilent
		a.handshake++
	} else {
		a.anonymous++
		a.admittedAnon.Add(1)
	}
	a.total++
	a.unauth++
	s.tiers[c.tier].push(c)
	a.setN(s, s.n+1)
	return c, victims
}

// victim picks the connection of s to evict: one silent for longer than
// silentGrace, else the oldest idle, else the oldest of the handshakes in
// progress and the newer silent ones, else the oldest with a request in
// flight. Handshakes and silent ones are compared by when they were
// accepted, not when a handshake was first heard: on a busy node the
// handshake goroutines may read a flood's stalled ClientHellos only after
// a newcomer was accepted, and the newcomer must still go last.
func (a *admitter) victim(s *source) *admConn {
	silent := s.tiers[tierSilent].head
	if silent != nil && a.now().Sub(silent.since) > silentGrace {
		return silent
	}
	if c := s.tiers[tierIdle].head; c != nil {
		return c
	}
	if hs := s.tiers[tierHandshake].head; hs != nil && (silent == nil || !silent.admitted.Before(hs.admitted)) {
		return hs
	}
	if silent != nil {
		return silent
	}
	return s.tiers[tierActive].head
}

// evict frees the slot of s's victim.
func (a *admitter) evict(s *source, reason int) *admConn {
	c := a.victim(s)
	if c == nil {
		panic("netsvc: admission: a counted source holds no connection")
	}
	a.detach(c)
	a.total--
	c.class = classGone
	a.evicted[reason].Add(1)
	return c
}

// detach takes an unauthenticated connection off its source.
func (a *admitter) detach(c *admConn) {
	s := c.src
	s.tiers[c.tier].remove(c)
	c.src = nil
	a.unauth--
	if c.class == classHandshake {
		a.handshake--
	} else {
		a.anonymous--
	}
	a.setN(s, s.n-1)
}

// setN moves s to the bucket of its new count, forgetting it at zero.
func (a *admitter) setN(s *source, n int) {
	if s.n > 0 {
		a.buckets[s.n].remove(s)
	}
	s.n = n
	if n == 0 {
		delete(a.sources, s.key)
	} else {
		for n >= len(a.buckets) {
			a.buckets = append(a.buckets, sourceList{})
		}
		a.buckets[n].push(s)
		a.maxN = max(a.maxN, n)
	}
	for a.maxN > 0 && a.buckets[a.maxN].head == nil {
		a.maxN--
	}
}

// setTier moves an unauthenticated connection to the end of tier t.
func (a *admitter) setTier(c *admConn, t tier) {
	if c.src == nil {
		return
	}
	c.src.tiers[c.tier].remove(c)
	c.tier, c.since = t, a.now()
	c.src.tiers[t].push(c)
}

func (a *admitter) heard(c *admConn) {
	a.mu.Lock()
	if c.class == classHandshake && c.tier == tierSilent {
		a.setTier(c, tierHandshake)
	}
	a.mu.Unlock()
}

// handshaken classifies a connection whose handshake succeeded; false if
// it was evicted meanwhile.
func (a *admitter) handshaken(c *admConn, authenticated bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.class != classHandshake {
		return false
	}
	if authenticated {
		a.detach(c)
		c.class = classAuthenticated
		a.authenticated++
		a.admittedAut.Add(1)
		return true
	}
	a.handshake--
	a.anonymous++
	c.class = classAnonymous
	a.setTier(c, tierIdle)
	a.admittedAnon.Add(1)
	return true
}

// connState follows requests on unauthenticated connections (the
// anonymous server's ConnState hook): a connection with one in flight is
// evicted last.
func (a *admitter) connState(nc net.Conn, st http.ConnState) {
	c := admittedConn(nc)
	if c == nil {
		return
	}
	t := tierIdle
	switch st {
	case http.StateActive:
		t = tierActive
	case http.StateNew, http.StateIdle:
	default:
		return
	}
	a.mu.Lock()
	if c.class == classAnonymous {
		a.setTier(c, t)
	}
	a.mu.Unlock()
}

func (a *admitter) release(c *admConn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch c.class {
	case classGone:
		return
	case classAuthenticated:
		a.authenticated--
	default:
		a.detach(c)
	}
	a.total--
	c.class = classGone
}

// handshakes returns the connections still in their handshake, for
// shutdown to close.
func (a *admitter) handshakes() []*admConn {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*admConn
	for _, s := range a.sources {
		for _, t := range []tier{tierSilent, tierHandshake} {
			for c := s.tiers[t].head; c != nil; c = c.next {
				out = append(out, c)
			}
		}
	}
	return out
}

// admissionStats is a snapshot for the metrics collector and tests.
type admissionStats struct {
	Handshake, Anonymous, Authenticated int
	Accepted, Refused                   uint64
	Evicted                             map[string]uint64
	HandshakeTimeouts                   uint64
	HandshakeFailures                   uint64
	AdmittedAnonymous                   uint64
	AdmittedAuthenticated               uint64
}

func (a *admitter) stats() admissionStats {
	a.mu.Lock()
	st := admissionStats{Handshake: a.handshake, Anonymous: a.anonymous, Authenticated: a.authenticated}
	a.mu.Unlock()
	st.Accepted, st.Refused = a.accepted.Load(), a.refused.Load()
	st.Evicted = make(map[string]uint64, len(evictReasons))
	for i, r := range evictReasons {
		st.Evicted[r] = a.evicted[i].Load()
	}
	st.HandshakeTimeouts, st.HandshakeFailures = a.handshakeTimeouts.Load(), a.handshakeFailures.Load()
	st.AdmittedAnonymous, st.AdmittedAuthenticated = a.admittedAnon.Load(), a.admittedAut.Load()
	return st
}

// connList is an intrusive FIFO of connections: oldest at head.
type connList struct{ head, tail *admConn }

func (l *connList) push(c *admConn) {
	c.prev, c.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *connList) remove(c *admConn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

// sourceList is an intrusive list of sources.
type sourceList struct{ head, tail *source }

func (l *sourceList) push(s *source) {
	s.prev, s.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *sourceList) remove(s *source) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next = nil, nil
}
