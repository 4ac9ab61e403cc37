package ntp

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// TestServeStampsEachSendGroup checks that the worker reads a reply's
// transmit time just before the sendmmsg that carries it, not before the
// whole batch is sent. It needs no timing: on loopback a datagram gets its
// receive timestamp inside the sender's system call, so a reply stamped
// after the previous group's sendmmsg has a transmit time later than that
// group's receive times, and one stamped in the same group an earlier one.
// Twelve requests queue before the worker starts, so its first recvmmsg
// takes them all; the group boundaries are then exactly every SendBatch.
func TestServeStampsEachSendGroup(t *testing.T) {
	const n = 12
	for _, tc := range []struct {
		sendBatch int
		want      []int // replies stamped after the previous reply arrived
	}{
		{1, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{4, []int{4, 8}},
		{5, []int{5, 10}},
		{32, nil}, // one group: every stamp before any send
	} {
		s, err := NewServer(Config{Addr: "127.0.0.1:0", Workers: 1, Batch: 32, SendBatch: tc.sendBatch},
			offsetClock{}, lockedStatus, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Listen(); err != nil {
			t.Fatal(err)
		}
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		}); err != nil || serr != nil {
			t.Fatalf("SO_TIMESTAMPNS: %v %v", err, serr)
		}
		for i := range n {
			req := make([]byte, HeaderLen)
			req[0] = 4<<3 | ModeClient
			binary.BigEndian.PutUint64(req[40:], uint64(i+1))
			if _, err := c.WriteTo(req, s.Addr()); err != nil {
				t.Fatal(err)
			}
		}
		testbin.Serve(t, "server", s.Serve)

		tx := make([]time.Time, n)
		rx := make([]time.Time, n)
		buf, oob := make([]byte, 1500), make([]byte, 128)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for range n {
			m, oobn, _, _, err := c.ReadMsgUDP(buf, oob)
			if err != nil {
				t.Fatalf("send batch %d: read: %v", tc.sendBatch, err)
			}
			if m < HeaderLen {
				t.Fatalf("send batch %d: reply of %d bytes", tc.sendBatch, m)
			}
			i := int(binary.BigEndian.Uint64(buf[24:32])) - 1
			ns, ok := KernelTimestamp(oob[:oobn])
			if i < 0 || i >= n || !ok {
				t.Fatalf("send batch %d: reply to request %d, kernel timestamp %v", tc.sendBatch, i, ok)
			}
			rx[i] = time.Unix(0, ns)
			tx[i] = Timestamp(binary.BigEndian.Uint64(buf[40:48])).Time(rx[i])
		}
		c.Close()
		var got []int
		for i := 1; i < n; i++ {
			if tx[i].After(rx[i-1]) {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("send batch %d: replies stamped after the previous one arrived: %v, want %v", tc.sendBatch, got, tc.want)
		}
	}
}
