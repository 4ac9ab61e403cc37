package ntp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// rcvBufBytes is the receive buffer asked for on each socket; the kernel
// caps it at net.core.rmem_max.
const rcvBufBytes = 4 << 20

// listenReusePort binds n UDP sockets to addr. With n > 1 every socket has
// SO_REUSEPORT so that the kernel spreads clients over them; all have
// SO_TIMESTAMPNS so that packets carry a kernel receive timestamp.
//
// Port 0 with n > 1 needs care: the kernel's ephemeral port search treats a
// port held by another SO_REUSEPORT socket of the same user as free, so it
// could hand us a port some other process is serving. For port 0 a probe
// socket without SO_REUSEPORT picks a port nobody holds, is closed, and the
// workers bind that port; a lost race is retried.
func listenReusePort(addr string, n int) ([]*net.UDPConn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("ntp: listen %s: %w", addr, err)
	}
	if n == 1 {
		c, err := listenOne(addr, false)
		if err != nil {
			return nil, err
		}
		return []*net.UDPConn{c}, nil
	}
	if port != "0" && port != "" {
		return listenGroup(addr, n)
	}
	var lastErr error
	for range 8 {
		probe, err := listenOne(addr, false)
		if err != nil {
			return nil, err
		}
		_, p, _ := net.SplitHostPort(probe.LocalAddr().String())
		_ = probe.Close()
		conns, err := listenGroup(net.JoinHostPort(host, p), n)
		if err == nil {
			return conns, nil
		}
		if !errors.Is(err, unix.EADDRINUSE) {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func listenGroup(addr string, n int) ([]*net.UDPConn, error) {
	conns := make([]*net.UDPConn, 0, n)
	for range n {
		c, err := listenOne(addr, true)
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func listenOne(addr string, reusePort bool) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if reusePort {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
					serr = fmt.Errorf("SO_REUSEPORT: %w", serr)
					return
				}
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); serr != nil {
				serr = fmt.Errorf("SO_TIMESTAMPNS: %w", serr)
				return
			}
			// Best effort: a larger queue absorbs bursts; the kernel caps it.
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBufBytes)
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("ntp: listen %s: %w", addr, err)
	}
	return pc.(*net.UDPConn), nil
}
