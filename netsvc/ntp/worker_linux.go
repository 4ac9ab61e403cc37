package ntp

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// rxBufLen holds any NTP packet worth parsing, NTS-sized ones included;
	// larger packets arrive truncated and are dropped.
	rxBufLen = 2048
	// oobLen holds the SCM_TIMESTAMPNS control message with room to spare.
	oobLen = 64
)

// reply kinds, for counting after the batch is sent.
const (
	kindSync uint8 = iota
	kindUnsync
	kindKoD
	kindNTS       // authenticated NTS reply, transmit time already sealed in
	kindNTSUnsync // the same while unsynchronized
	kindNAK       // NTS NAK
)

// worker serves one socket: recvmmsg a batch, build replies into fixed
// buffers, and send them a few at a time (Config.SendBatch), each group's
// transmit times read just before its sendmmsg, so that no reply waits
// long after its transmit timestamp. Every buffer is allocated in
// newWorker; the loop allocates nothing.
type worker struct {
	s     *Server
	rc    syscall.RawConn
	c     *counters
	batch int

	rbuf  []byte
	oob   []byte
	names []unix.RawSockaddrInet6
	riov  []unix.Iovec
	rmsg  []unix.Mmsghdr

	sbuf  []byte
	slot  int // bytes per reply in sbuf: HeaderLen, or rxBufLen with NTS
	siov  []unix.Iovec
	smsg  []unix.Mmsghdr
	kinds []uint8
	efs   [MaxExtFields]ExtField

	// nsend replies are built; those before sendOff are sent; sendEnd is
	// where the sendmmsg in progress stops.
	nrecv, nsend, nsent, sendOff, sendEnd int
	errno                                 syscall.Errno
	readFn, writeFn                       func(fd uintptr) bool
	counts                                batchCounts
}

func newWorker(s *Server, conn *net.UDPConn, c *counters) (*worker, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("ntp: worker %s: %w", conn.LocalAddr(), err)
	}
	b := s.cfg.Batch
	// NTS replies are longer than a header but never longer than their
	// request, which fits rxBufLen; plain-only servers keep small slots.
	slot := HeaderLen
	if s.cfg.NTS != nil {
		slot = rxBufLen
	}
	w := &worker{
		s: s, rc: rc, c: c, batch: b,
		rbuf:  make([]byte, b*rxBufLen),
		oob:   make([]byte, b*oobLen),
		names: make([]unix.RawSockaddrInet6, b),
		riov:  make([]unix.Iovec, b),
		rmsg:  make([]unix.Mmsghdr, b),
		sbuf:  make([]byte, b*slot),
		slot:  slot,
		siov:  make([]unix.Iovec, b),
		smsg:  make([]unix.Mmsghdr, b),
		kinds: make([]uint8, b),
	}
	for i := range b {
		w.riov[i].Base = &w.rbuf[i*rxBufLen]
		w.riov[i].SetLen(rxBufLen)
		w.rmsg[i].Hdr.Name = (*byte)(unsafe.Pointer(&w.names[i]))
		w.rmsg[i].Hdr.Iov = &w.riov[i]
		w.rmsg[i].Hdr.SetIovlen(1)
		w.rmsg[i].Hdr.Control = &w.oob[i*oobLen]
		w.siov[i].Base = &w.sbuf[i*slot]
		w.siov[i].SetLen(HeaderLen)
		w.smsg[i].Hdr.Iov = &w.siov[i]
		w.smsg[i].Hdr.SetIovlen(1)
	}
	w.readFn = w.recv
	w.writeFn = w.send
	return w, nil
}

// recv is the RawConn.Read callback; false means "wait for readability".
func (w *worker) recv(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&w.rmsg[0])),
		uintptr(w.batch), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	w.nrecv, w.errno = int(n), e
	return true
}

// send is the RawConn.Write callback. It reads the transmit times here,
// right before the system call, so that a retry after EAGAIN or a partial
// send stamps afresh what it sends.
func (w *worker) send(fd uintptr) bool {
	for j := w.sendOff; j < w.sendEnd; j++ {
		if k := w.kinds[j]; k == kindSync || k == kindUnsync {
			putTxTime(w.sbuf[j*w.slot:], TimestampFromTime(w.s.clk.Now()))
		}
	}
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.smsg[w.sendOff])),
		uintptr(w.sendEnd-w.sendOff), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	w.nsent, w.errno = int(n), e
	return true
}

// run serves until the socket is closed.
func (w *worker) run() error {
	for {
		for i := range w.rmsg {
			h := &w.rmsg[i].Hdr
			h.Namelen = unix.SizeofSockaddrInet6
			h.SetControllen(oobLen)
			h.Flags = 0
		}
		if err := w.rc.Read(w.readFn); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("recvmmsg: %w", err)
		}
		if w.errno != 0 {
			if w.errno == unix.EINTR || w.errno == unix.ECONNREFUSED {
				continue
			}
			return fmt.Errorf("recvmmsg: %w", w.errno)
		}
		err := w.handle(w.nrecv)
		if err == nil {
			err = w.flush(w.nsend)
		}
		w.c.add(&w.counts)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// handle turns n received packets into replies in sbuf/smsg, sending them
// as they become due; the caller sends what is left.
func (w *worker) handle(n int) error {
	s := w.s
	// offset = disciplined - host, read back to back; see the package doc.
	offset, disc, hostAfter := clockOffset(time.Now, s.clk.Now)
	mono := int64(hostAfter.Sub(s.epoch))
	st := s.status()

	w.nsend, w.sendOff = 0, 0
	w.counts.requests += uint64(n)
	for i := range n {
		if w.nsend-w.sendOff >= w.s.cfg.SendBatch {
			if err := w.flush(w.nsend); err != nil {
				return err
			}
		}
		m := &w.rmsg[i]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			w.counts.drops[DropTruncated]++
			continue
		}
		pkt := w.rbuf[i*rxBufLen : i*rxBufLen+int(m.Len)]
		req, err := ParseRequest(pkt)
		if err != nil {
			w.counts.drops[dropReason(err)]++
			continue
		}
		rxNs, ok := KernelTimestamp(w.oob[i*oobLen : i*oobLen+int(m.Hdr.Controllen)])
		if ok {
			rxNs += offset
		} else {
			rxNs = disc.UnixNano()
			w.counts.noKernelTS++
		}
		j := w.nsend
		out := w.sbuf[j*w.slot : j*w.slot+HeaderLen]
		var h Header
		switch w.verdict(&w.names[i], mono) {
		case verdictDrop:
			w.counts.drops[DropRateLimited]++
			continue
		case verdictKoD:
			h = KoDHeader(&req, KissRate)
			w.kinds[j] = kindKoD
		default:
			rx := TimestampFromTime(time.Unix(0, rxNs))
			if s.cfg.NTS != nil && req.Version == 4 && len(pkt) > HeaderLen {
				n, ok := w.handleNTS(pkt, &req, &st, rx, j)
				if n < 0 {
					continue
				}
				if ok {
					w.siov[j].SetLen(n)
					w.smsg[j].Hdr.Name = m.Hdr.Name
					w.smsg[j].Hdr.Namelen = m.Hdr.Namelen
					w.nsend++
					continue
				}
			}
			h = ServerHeader(&req, &st, s.precision, rx, 0)
			w.kinds[j] = kindSync
			if h.Leap == LeapAlarm {
				w.kinds[j] = kindUnsync
			}
		}
		h.MarshalTo(out)
		w.siov[j].SetLen(HeaderLen)
		w.smsg[j].Hdr.Name = m.Hdr.Name
		w.smsg[j].Hdr.Namelen = m.Hdr.Namelen
		w.nsend++
	}
	return nil
}

// handleNTS builds the reply to an NTS request into slot j: an
// authenticated reply, or an NTS NAK when authentication fails. It returns
// the reply's length and true when it built one; false when the request
// carries no NTS Cookie and is served as plain NTP; a negative length when
// the request is dropped (counted here).
func (w *worker) handleNTS(pkt []byte, req *Header, st *Status, rx Timestamp, j int) (int, bool) {
	efs, err := ParseExtFields(pkt, w.efs[:0])
	if err != nil {
		w.counts.drops[DropMalformed]++
		return -1, false
	}
	if !hasNTSCookie(efs) {
		return 0, false
	}
	s := w.s
	// The capacity ends at the request's length: no reply may be longer.
	base := j * w.slot
	slot := w.sbuf[base : base+len(pkt) : base+len(pkt)]
	// The authenticator covers the header, so the transmit time is read
	// now and sealed in rather than patched in at send time.
	h := ServerHeader(req, st, s.precision, rx, TimestampFromTime(s.clk.Now()))
	h.MarshalTo(slot)
	reply, ok := s.cfg.NTS.ProcessNTS(pkt, efs, slot[:HeaderLen])
	if ok && len(reply) <= len(pkt) && &reply[0] == &slot[0] {
		w.kinds[j] = kindNTS
		if h.Leap == LeapAlarm {
			w.kinds[j] = kindNTSUnsync
		}
		return len(reply), true
	}
	nak, ok := appendNAK(slot[:0], req, pkt, efs)
	if !ok {
		w.counts.drops[DropMalformed]++
		return -1, false
	}
	w.kinds[j] = kindNAK
	return len(nak), true
}

func (w *worker) verdict(name *unix.RawSockaddrInet6, mono int64) verdict {
	if w.s.limiter == nil {
		return verdictAllow
	}
	var key clientKey
	switch name.Family {
	case unix.AF_INET6:
		key = name.Addr
	case unix.AF_INET:
		v4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(name))
		key[10], key[11] = 0xff, 0xff
		copy(key[12:], v4.Addr[:])
	}
	return w.s.limiter.check(&key, mono)
}

// flush sends the built replies not yet sent, up to end; send stamps
// their transmit times.
func (w *worker) flush(end int) error {
	w.sendEnd = end
	for w.sendOff < end {
		if err := w.rc.Write(w.writeFn); err != nil {
			return fmt.Errorf("sendmmsg: %w", err)
		}
		if w.errno != 0 {
			if w.errno != unix.EINTR {
				// The message at sendOff failed; skip it, send the rest.
				w.counts.drops[DropSendError]++
				w.sendOff++
			}
			continue
		}
		if w.s.sent != nil {
			w.s.sent(w.nsent)
		}
		for j := w.sendOff; j < w.sendOff+w.nsent; j++ {
			switch w.kinds[j] {
			case kindKoD:
				w.counts.kod++
			case kindUnsync:
				w.counts.unsynchronized++
				w.counts.replies++
			case kindNTS:
				w.counts.ntsReplies++
				w.counts.replies++
			case kindNTSUnsync:
				w.counts.ntsReplies++
				w.counts.unsynchronized++
				w.counts.replies++
			case kindNAK:
				w.counts.ntsNAKs++
			default:
				w.counts.replies++
			}
		}
		w.sendOff += w.nsent
	}
	return nil
}

func dropReason(err error) DropReason {
	switch err {
	case ErrShort:
		return DropShort
	case ErrVersion:
		return DropVersion
	case ErrMode:
		return DropMode
	default:
		return DropMalformed
	}
}

// KernelTimestamp finds the SCM_TIMESTAMPNS control message in oob and
// returns its CLOCK_REALTIME reading in Unix nanoseconds. It does not
// allocate, so receive loops (the server's and ntpbench's) can call it per
// packet.
func KernelTimestamp(oob []byte) (int64, bool) {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(cm.Len)
		if l < hdr || l > len(oob) {
			return 0, false
		}
		if cm.Level == unix.SOL_SOCKET && cm.Type == unix.SCM_TIMESTAMPNS &&
			l >= hdr+int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[hdr]))
			return ts.Nano(), true
		}
		next := unix.CmsgSpace(l - hdr)
		if next >= len(oob) {
			return 0, false
		}
		oob = oob[next:]
	}
	return 0, false
}
