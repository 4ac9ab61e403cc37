package ntp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
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
		// The same trap with a fixed port: a second daemon's group would
		// join the first one's and clients would get answers from both. A
		// probe without SO_REUSEPORT fails if any socket holds the address.
		probe, err := listenOne(addr, false)
		if err != nil {
			return nil, err
		}
		_ = probe.Close()
		return soleGroup(addr, n)
	}
	var lastErr error
	for range 8 {
		probe, err := listenOne(addr, false)
		if err != nil {
			return nil, err
		}
		_, p, _ := net.SplitHostPort(probe.LocalAddr().String())
		_ = probe.Close()
		conns, err := soleGroup(net.JoinHostPort(host, p), n)
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

// soleGroup binds the worker group and checks that no other socket joined
// the port between the probe and the bind.
func soleGroup(addr string, n int) ([]*net.UDPConn, error) {
	conns, err := listenGroup(addr, n)
	if err != nil {
		return nil, err
	}
	if err := soleOwner(conns); err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

// soleOwner fails when a UDP socket that is not one of conns is bound to
// their port on an overlapping address (the same one, or a wildcard on
// either side), as the kernel lists them in /proc/net/udp and udp6. It
// says nothing when /proc cannot be read.
func soleOwner(conns []*net.UDPConn) error {
	ours := map[uint64]bool{}
	for _, c := range conns {
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var st unix.Stat_t
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
		ours[st.Ino] = true
	}
	local := conns[0].LocalAddr().(*net.UDPAddr)
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			hexIP, hexPort, ok := strings.Cut(f[1], ":")
			p, perr := strconv.ParseUint(hexPort, 16, 16)
			ino, ierr := strconv.ParseUint(f[9], 10, 64)
			if !ok || perr != nil || ierr != nil || int(p) != local.Port || ours[ino] {
				continue
			}
			if overlaps(hexIP, local.IP) {
				return fmt.Errorf("ntp: listen %s: address already in use by another socket (inode %d, as listed in %s)", local, ino, table)
			}
		}
	}
	return nil
}

// overlaps reports whether a local address as /proc/net/udp{,6} prints it
// (hex, in the kernel's byte order) can receive packets sent to ip.
func overlaps(hexIP string, ip net.IP) bool {
	if strings.Trim(hexIP, "0") == "" || ip.IsUnspecified() {
		return true // a wildcard on either side
	}
	// The kernel prints each 32-bit word of the address as a number read
	// in host byte order; writing it back the same way gives the bytes.
	if len(hexIP)%8 != 0 {
		return false
	}
	raw := make([]byte, len(hexIP)/2)
	for i := 0; i < len(hexIP); i += 8 {
		w, err := strconv.ParseUint(hexIP[i:i+8], 16, 32)
		if err != nil {
			return false
		}
		binary.NativeEndian.PutUint32(raw[i/2:], uint32(w))
	}
	return net.IP(raw).Equal(ip)
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
