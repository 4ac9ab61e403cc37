package netsvc

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestSourceKey(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want string
	}{
		{"IPv4", &net.TCPAddr{IP: net.ParseIP("10.80.0.7"), Port: 40000}, "10.80.0.7/32"},
		{"IPv4-mapped IPv6 counts as IPv4", &net.TCPAddr{IP: net.ParseIP("::ffff:10.80.0.7"), Port: 1}, "10.80.0.7/32"},
		{"IPv6: the whole /64", &net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 1}, "2001:db8:1:2::/64"},
		{"another address of that /64", &net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::9"), Port: 1}, "2001:db8:1:2::/64"},
		{"not a TCP address", &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 5}, "192.0.2.1/32"},
		{"unparsable", &net.UnixAddr{Name: "@x", Net: "unix"}, "invalid Prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sourceKey(tt.addr).String(); got != tt.want {
				t.Errorf("sourceKey(%v) = %s, want %s", tt.addr, got, tt.want)
			}
		})
	}
	if sourcePrefix(netip.Addr{}).IsValid() {
		t.Error("the zero address has a valid source prefix")
	}
}

func TestAdmissionDefaults(t *testing.T) {
	got := Admission{}.withDefaults()
	want := Admission{
		MaxConns:                    MaxConns,
		MaxUnauthenticated:          MaxUnauthenticatedConns,
		MaxUnauthenticatedPerSource: MaxUnauthenticatedConnsPerSource,
		HandshakeTimeout:            HandshakeTimeout,
		AnonymousIdleTimeout:        AnonymousIdleTimeout,
	}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	// The reserve for certified clients is most of the listener.
	if reserved := MaxConns - MaxUnauthenticatedConns; reserved < MaxConns*3/4 {
		t.Errorf("only %d of %d slots reserved for authenticated clients", reserved, MaxConns)
	}
	small := Admission{MaxConns: 8, HandshakeTimeout: time.Second}.withDefaults()
	if small.MaxUnauthenticated != 8 || small.MaxUnauthenticatedPerSource != 8 || small.HandshakeTimeout != time.Second {
		t.Errorf("small listener: %+v; want the unauthenticated limits clipped to MaxConns and the timeout kept", small)
	}
}
