package nftables

import (
	"slices"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// The node's fixture listens on every port of the matrix and on ports that
// must stay closed to everyone.
var (
	nodeTCP = []int{22, 2222, 4317, 4460, 5000, 5443, 8080, 9090}
	nodeUDP = []int{123, 161, 2002, 5000}
)

// segments match the default sets in timenode.nft: app 10.80.0.0/24 (also the
// default NTP clients), monitoring 10.70.0.0/24, management 10.90.0.0/24;
// 10.99.0.0/24 is in none of them.
var segments = []segment{
	{role: "app", prefix: "10.80.0"},
	{role: "mon", prefix: "10.70.0"},
	{role: "mgmt", prefix: "10.90.0"},
	{role: "other", prefix: "10.99.0"},
}

// TestPortMatrix loads timenode.nft into a node namespace and, from a
// namespace on each segment, checks that exactly the allowed ports answer:
// TCP with an nmap SYN scan (allowed ports "open", all others "filtered",
// never "closed", which would mean a reset got through), UDP by whether our
// own datagram is echoed. Before the ruleset is loaded every port answers,
// which proves the fixture works and the later silence is the firewall's.
// Then it checks the ssh rate limit, egress, and that drops are counted.
func TestPortMatrix(t *testing.T) {
	needRoot(t)
	for _, tool := range [][2]string{{"ip", "iproute2"}, {"nft", "nftables"}, {"nmap", "nmap"}} {
		testbin.NeedTool(t, tool[0], tool[1])
	}
	start := time.Now()
	l := newLab(t, segments)
	l.serve(l.node(), nodeTCP, nodeUDP)
	other := segments[3]
	l.serve(l.ns(other.role), []int{80, 4460, 5696, 8200}, []int{53, 123, 2002})
	t.Logf("lab up in %v", time.Since(start).Round(time.Millisecond))

	t.Run("control: open without the ruleset", func(t *testing.T) {
		for p, state := range l.tcpScan(t, l.ns(other.role), other.nodeAddr(), nodeTCP) {
			if state != "open" {
				t.Errorf("tcp/%d from other before loading: %s, want open", p, state)
			}
		}
		for p, echoed := range l.udpEchoes(t, l.ns(other.role), other.nodeAddr(), nodeUDP) {
			if !echoed {
				t.Errorf("udp/%d from other before loading: no echo", p)
			}
		}
	})

	l.in(t, l.node(), "nft", "-f", abs(t, "timenode.nft"))
	loaded := time.Now()

	tests := []struct {
		role    string
		wantTCP []int
		wantUDP []int
	}{
		{role: "app", wantTCP: []int{4460, 5443}, wantUDP: []int{123, 2002}}, // 5000 only from @plain_http, empty as shipped
		{role: "mon", wantTCP: []int{4317, 9090}},
		{role: "mgmt", wantTCP: []int{22}},
		{role: "other"},
	}
	t.Run("ingress", func(t *testing.T) {
		for _, tt := range tests {
			seg := segments[slices.IndexFunc(segments, func(s segment) bool { return s.role == tt.role })]
			t.Run(tt.role, func(t *testing.T) {
				t.Parallel()
				for p, state := range l.tcpScan(t, l.ns(tt.role), seg.nodeAddr(), nodeTCP) {
					want := "filtered"
					if slices.Contains(tt.wantTCP, p) {
						want = "open"
					}
					if state != want {
						t.Errorf("tcp/%d from %s: %s, want %s", p, tt.role, state, want)
					}
				}
				for p, echoed := range l.udpEchoes(t, l.ns(tt.role), seg.nodeAddr(), nodeUDP) {
					if want := slices.Contains(tt.wantUDP, p); echoed != want {
						t.Errorf("udp/%d from %s: echoed = %v, want %v", p, tt.role, echoed, want)
					}
				}
			})
		}
	})
	t.Logf("ingress matrix scanned in %v", time.Since(loaded).Round(time.Millisecond))

	t.Run("ssh rate limit", func(t *testing.T) {
		// The scan above spent one new connection; the meter allows a burst
		// of 5, then 10 a minute.
		const n = 15
		got := l.tcpConnects(t, l.ns("mgmt"), segments[2].nodeAddr(), 22, n)
		t.Logf("%d of %d rapid ssh connects from mgmt got through", got, n)
		if got == 0 || got > 6 {
			t.Errorf("%d rapid ssh connects from mgmt: %d connected, want 1..6", n, got)
		}
		if c := l.counter(t, "ssh_ratelimited"); c == 0 {
			t.Errorf("ssh_ratelimited counter is 0 after %d refused connects", n-got)
		}
	})

	t.Run("egress", func(t *testing.T) {
		target := other.clientAddr()
		echoes := l.udpEchoes(t, l.node(), target, []int{53, 123, 2002})
		for _, p := range []int{123, 2002} { // NTP peers, Roughtime witnesses
			if !echoes[p] {
				t.Errorf("udp/%d from node to %s: no reply, want one", p, target)
			}
		}
		if echoes[53] {
			t.Errorf("udp/53 from node to %s: reply, want none (no DNS servers configured)", target)
		}
		for _, c := range []struct {
			port int
			want int
		}{{80, 0}, {4460, 1}, {8200, 1}, {5696, 1}} { // NTS-KE witnesses, Vault, KMIP
			if got := l.tcpConnects(t, l.node(), target, c.port, 1); got != c.want {
				t.Errorf("tcp/%d from node to %s: %d connected, want %d", c.port, target, got, c.want)
			}
		}
	})

	t.Run("drops are counted", func(t *testing.T) {
		for _, name := range []string{"input_dropped", "output_dropped"} {
			if c := l.counter(t, name); c == 0 {
				t.Errorf("counter %s is 0 after blocked traffic", name)
			}
		}
	})
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}
