package ntp

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// reusePortSocket binds a UDP socket with SO_REUSEPORT, as another
// timenoded's worker group would.
func reusePortSocket(t *testing.T, addr string) net.PacketConn {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// TestListenRefusesAPortAnotherProcessHolds: a second server on an address
// already served must fail to start, never share the port silently (the
// kernel spreads clients over every SO_REUSEPORT socket of the same user).
func TestListenRefusesAPortAnotherProcessHolds(t *testing.T) {
	first, err := listenReusePort("127.0.0.1:0", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(first)
	addr := first[0].LocalAddr().String()
	plain, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	foreign := reusePortSocket(t, "127.0.0.1:0")

	tests := []struct {
		name    string
		addr    string
		workers int
	}{
		{"second server, worker group", addr, 2},
		{"second server, one socket", addr, 1},
		{"a plain socket holds the port", plain.LocalAddr().String(), 2},
		{"an SO_REUSEPORT socket holds the port", foreign.LocalAddr().String(), 4},
		{"wildcard over a held loopback port", "0.0.0.0:" + portOf(addr), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conns, err := listenReusePort(tc.addr, tc.workers)
			if err == nil {
				closeAll(conns)
				t.Fatalf("listen %s with %d workers succeeded on a port another socket holds", tc.addr, tc.workers)
			}
			if !strings.Contains(err.Error(), "already in use") {
				t.Errorf("error %q does not say the address is in use", err)
			}
		})
	}
}

// TestSoleOwnerCatchesALateJoiner: a socket that joins the port between
// the probe and the group's bind is found afterwards.
func TestSoleOwnerCatchesALateJoiner(t *testing.T) {
	conns, err := listenReusePort("127.0.0.1:0", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(conns)
	if err := soleOwner(conns); err != nil {
		t.Fatalf("our own group alone: %v", err)
	}
	reusePortSocket(t, conns[0].LocalAddr().String())
	if err := soleOwner(conns); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("soleOwner with a foreign socket on the port: %v", err)
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
