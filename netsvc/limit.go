package netsvc

import (
	"net"
	"net/netip"
	"time"
)

// MaxConns caps simultaneous connections per listener, so a flood cannot
// exhaust file descriptors.
const MaxConns = 4096

// Defaults of Admission. Unauthenticated connections (a TLS handshake in
// progress, or finished without a client certificate; every connection
// of a plain listener) share MaxUnauthenticatedConns slots at most: the
// other MaxConns-MaxUnauthenticatedConns are reserved for clients that
// proved a certificate from the service CA, whatever a flood does. The
// gateway checker and the in-cluster probes need a handful of slots, not
// hundreds.
const (
	MaxUnauthenticatedConns          = 512
	MaxUnauthenticatedConnsPerSource = 32
	// HandshakeTimeout bounds a TLS handshake: loopback and LAN clients
	// finish in milliseconds, a slow WAN link in well under a second.
	HandshakeTimeout = 3 * time.Second
	// AnonymousIdleTimeout closes a connection without a client
	// certificate that has had no request in flight for this long: the
	// gateway checker opens a connection per check and closes it itself.
	AnonymousIdleTimeout = 5 * time.Second
)

// Admission says how many connections a listener takes and how long it
// lets those without a verified client certificate hold a slot. A zero
// field takes its default (the constants above).
//
// Unauthenticated connections are never refused while any of them can be
// evicted: a newcomer over a limit evicts one, so a flood cannot lock the
// port against the next legitimate handshake. The victim comes from the
// arriving connection's own source when that source is at its
// per-source limit, otherwise from the source holding the most
// unauthenticated slots; within a source it is a connection that has
// sent nothing for half a second, else the oldest idle one, else the
// oldest handshake in progress, else the oldest with a request in
// flight. A newcomer is thus evicted last of all. Connections with a
// verified client certificate are never evicted; a newcomer is refused
// only when every slot is held by one.
type Admission struct {
	MaxConns                    int
	MaxUnauthenticated          int
	MaxUnauthenticatedPerSource int
	HandshakeTimeout            time.Duration
	AnonymousIdleTimeout        time.Duration
}

// HTTP/2 limits and the request timeouts of connections without a
// certificate. Go's HTTP/2 defaults (250 streams per connection, 1 MiB of
// receive window each) let 16 connections that never open their window
// pin 4,000 handlers; a request carries no body here, so small windows
// cost nothing. An unauthenticated client may only fetch /health or be
// told 401: a few streams and a few seconds are plenty.
const (
	anonymousMaxStreams     = 4
	authenticatedMaxStreams = 64
	h2ReceiveWindowConn     = 64 << 10 // the least Go's server takes
	h2ReceiveWindowStream   = 16 << 10
	anonymousHeaderTimeout  = 2 * time.Second
	anonymousRequestTimeout = 5 * time.Second
)

// withDefaults fills the zero fields.
func (a Admission) withDefaults() Admission {
	if a.MaxConns <= 0 {
		a.MaxConns = MaxConns
	}
	if a.MaxUnauthenticated <= 0 {
		a.MaxUnauthenticated = min(MaxUnauthenticatedConns, a.MaxConns)
	}
	if a.MaxUnauthenticatedPerSource <= 0 {
		a.MaxUnauthenticatedPerSource = min(MaxUnauthenticatedConnsPerSource, a.MaxUnauthenticated)
	}
	if a.HandshakeTimeout <= 0 {
		a.HandshakeTimeout = HandshakeTimeout
	}
	if a.AnonymousIdleTimeout <= 0 {
		a.AnonymousIdleTimeout = AnonymousIdleTimeout
	}
	return a
}

// sourceKey names the source a connection is counted against: its IPv4
// address, or the /64 of an IPv6 address (one subscriber or host gets a
// whole /64, so a per-address limit would be no limit).
func sourceKey(a net.Addr) netip.Prefix {
	var ip netip.Addr
	switch t := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(t.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	return sourcePrefix(ip)
}

// sourcePrefix is sourceKey for an address; the zero prefix for none.
func sourcePrefix(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}
