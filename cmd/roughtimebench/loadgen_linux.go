package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/aunsorm/timenode/cmd/internal/benchrun"
	"github.com/aunsorm/timenode/cmd/internal/proccpu"
	"github.com/aunsorm/timenode/netsvc/roughtime"
)

// loadConfig is one round against one server: keep inflight requests
// outstanding against addr.
type loadConfig struct {
	addr        netip.AddrPort
	templates   []template // requests of slot i use templates[i%len]
	pub         ed25519.PublicKey
	inflight    int
	mmsg        int // messages per sendmmsg/recvmmsg
	verifyEvery int // every n-th reply is verified in full
	warmup      time.Duration
	duration    time.Duration
	timeout     time.Duration // a request unanswered this long is lost and resent
	cpu         int           // CPU the generator thread is pinned to; -1: none
	serverPID   int           // process whose CPU time is measured
}

// loadResult is what one or more rounds measured after the warm-up:
// Replies are replies to an outstanding request no larger than it, Lost
// requests unanswered within the timeout, Stray replies to no outstanding
// request (late ones), Bad replies larger than their request or failing
// verification. verified, Bad and firstBad cover the warm-up too.
type loadResult struct {
	benchrun.Sample
	verified uint64 // replies verified in full, and passed
	firstBad string // the first failure, to print
}

// merge pools another round into r.
func (r *loadResult) merge(o loadResult) {
	r.Sample.Merge(o.Sample)
	r.verified += o.verified
	if r.firstBad == "" {
		r.firstBad = o.firstBad
	}
}

const (
	maxInflight = 1024
	rbufLen     = 2048 // a reply up to twice the request is seen whole, and counted bad
	oobLen      = 128  // SCM_TIMESTAMPNS and IP_PKTINFO
	ctlLen      = 32   // one IP_PKTINFO control message
	seqBase     = 16   // slot source addresses are 127.(seqBase+seq%seqSpan).hi.lo
	seqSpan     = 64
)

// slot is one outstanding request; its source address names it.
type slot struct {
	req    []byte // the request now in flight, kept for verification
	tmpl   *template
	seq    uint32 // resends; its low bits are in the source address
	sentNs int64  // CLOCK_REALTIME when handed to the kernel
	queued bool
}

func (s *slot) source(id int) [4]byte {
	return [4]byte{127, byte(seqBase + s.seq%seqSpan), byte(id >> 8), byte(id)}
}

// slotOf decodes a reply's destination address: the slot and the low bits
// of its sequence number; ok is false for an address no slot uses.
func slotOf(a [4]byte) (id int, seq uint32, ok bool) {
	if a[0] != 127 || a[1] < seqBase || a[1] >= seqBase+seqSpan {
		return 0, 0, false
	}
	return int(a[2])<<8 | int(a[3]), uint32(a[1] - seqBase), true
}

// runLoad drives one server for cfg.warmup+cfg.duration on a locked OS
// thread pinned to cfg.cpu, and returns what it measured. It stops early,
// with ctx's error, when ctx is done.
func runLoad(ctx context.Context, cfg loadConfig) (res loadResult, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restore, err := proccpu.PinThread(cfg.cpu)
	if err != nil {
		return res, err
	}
	defer restore()
	fd, err := openSocket()
	if err != nil {
		return res, err
	}
	defer unix.Close(fd)

	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return res, err
	}
	rng := mrand.NewChaCha8(seed)
	slots := make([]slot, cfg.inflight)
	queue := make([]int, 0, cfg.inflight)
	for i := range slots {
		t := &cfg.templates[i%len(cfg.templates)]
		slots[i] = slot{req: slices.Clone(t.pkt), tmpl: t, queued: true}
		queue = append(queue, i)
	}
	var dst unix.RawSockaddrInet4
	dst.Family = unix.AF_INET
	dst.Addr = cfg.addr.Addr().As4()
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&dst.Port))[:], cfg.addr.Port())
	tmpl := unix.PktInfo4(&unix.Inet4Pktinfo{})
	specDst := unix.CmsgLen(0) + 4 // Inet4Pktinfo: Ifindex int32, then Spec_dst
	siov := make([]unix.Iovec, cfg.mmsg)
	smsg := make([]unix.Mmsghdr, cfg.mmsg)
	ctl := make([]byte, cfg.mmsg*ctlLen)
	rbuf := make([]byte, cfg.mmsg*rbufLen)
	oob := make([]byte, cfg.mmsg*oobLen)
	riov := make([]unix.Iovec, cfg.mmsg)
	rmsg := make([]unix.Mmsghdr, cfg.mmsg)
	for i := range cfg.mmsg {
		copy(ctl[i*ctlLen:], tmpl)
		smsg[i].Hdr.Name = (*byte)(unsafe.Pointer(&dst))
		smsg[i].Hdr.Namelen = unix.SizeofSockaddrInet4
		smsg[i].Hdr.Iov = &siov[i]
		smsg[i].Hdr.SetIovlen(1)
		smsg[i].Hdr.Control = &ctl[i*ctlLen]
		smsg[i].Hdr.SetControllen(len(tmpl))
		riov[i].Base = &rbuf[i*rbufLen]
		riov[i].SetLen(rbufLen)
		rmsg[i].Hdr.Iov = &riov[i]
		rmsg[i].Hdr.SetIovlen(1)
		rmsg[i].Hdr.Control = &oob[i*oobLen]
	}
	requeue := func(id int) {
		slots[id].seq++
		slots[id].queued = true
		queue = append(queue, id)
	}
	var answered uint64 // replies so far, warm-up included, for -verify-every
	check := func(s *slot, reply []byte) bool {
		var err error
		if len(reply) > len(s.req) {
			err = fmt.Errorf("reply of %d bytes to a %d-byte request", len(reply), len(s.req))
		} else if answered++; answered%uint64(cfg.verifyEvery) == 0 {
			if _, err = roughtime.VerifyReply(s.req, reply, cfg.pub); err == nil {
				res.verified++
			}
		}
		if err != nil {
			res.Bad++
			if res.firstBad == "" {
				res.firstBad = fmt.Sprintf("%s: %v", versionName(s.tmpl.version), err)
			}
			return false
		}
		return true
	}

	measuring := false
	var cpuStart uint64
	var genStart time.Duration
	var measureAt time.Time
	start := time.Now()
	lastSweep := start
	for {
		now := time.Now()
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if !measuring && now.Sub(start) >= cfg.warmup {
			measuring = true
			res = loadResult{Sample: benchrun.Sample{Bad: res.Bad, RTTs: make([]time.Duration, 0, 1<<16)}, verified: res.verified, firstBad: res.firstBad}
			measureAt, genStart = now, proccpu.ThreadCPU()
			if cpuStart, err = proccpu.Ticks(cfg.serverPID); err != nil {
				return res, err
			}
		}
		if measuring && now.Sub(measureAt) >= cfg.duration {
			res.Elapsed = now.Sub(measureAt)
			res.GenCPU = proccpu.ThreadCPU() - genStart
			end, err := proccpu.Ticks(cfg.serverPID)
			if err != nil {
				return res, err
			}
			res.CPUTicks = end - cpuStart
			slices.Sort(res.RTTs)
			return res, nil
		}
		// Send everything queued, cfg.mmsg at a time, each with a new nonce.
		for len(queue) > 0 {
			n := min(len(queue), cfg.mmsg)
			sentNs := time.Now().UnixNano()
			for j, id := range queue[:n] {
				s := &slots[id]
				_, _ = rng.Read(s.req[s.tmpl.nonce[0]:s.tmpl.nonce[1]])
				s.sentNs, s.queued = sentNs, false
				siov[j].Base = &s.req[0]
				siov[j].SetLen(len(s.req))
				src := s.source(id)
				copy(ctl[j*ctlLen+specDst:], src[:])
			}
			if err := sendAll(fd, smsg[:n]); err != nil {
				return res, err
			}
			queue = append(queue[:0], queue[n:]...)
		}
		// Receive what has arrived, waiting at most the socket timeout.
		for i := range rmsg {
			rmsg[i].Hdr.SetControllen(oobLen)
		}
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&rmsg[0])),
			uintptr(cfg.mmsg), unix.MSG_WAITFORONE, 0, 0)
		switch e {
		case 0:
		case unix.EAGAIN, unix.EINTR:
			n = 0
		default:
			return res, fmt.Errorf("roughtimebench: recvmmsg: %w", e)
		}
		for i := range int(n) {
			rxNs, to, ok := parseControl(oob[i*oobLen : i*oobLen+int(rmsg[i].Hdr.Controllen)])
			id, seq, mine := slotOf(to)
			if !mine || id >= len(slots) || slots[id].seq%seqSpan != seq || slots[id].queued {
				if measuring {
					res.Stray++
				}
				continue
			}
			if !ok {
				rxNs = time.Now().UnixNano()
			}
			s := &slots[id]
			if check(s, rbuf[i*rbufLen:i*rbufLen+int(rmsg[i].Len)]) && measuring {
				res.Replies++
				res.RTTs = append(res.RTTs, time.Duration(rxNs-s.sentNs))
			}
			requeue(id)
		}
		if now.Sub(lastSweep) > cfg.timeout/4 {
			lastSweep = now
			cut := now.UnixNano() - int64(cfg.timeout)
			for id := range slots {
				if !slots[id].queued && slots[id].sentNs < cut {
					if measuring {
						res.Lost++
					}
					requeue(id)
				}
			}
		}
	}
}

// parseControl returns the kernel receive time (SCM_TIMESTAMPNS) and the
// datagram's destination address (IP_PKTINFO) from a control buffer; ok
// is false without a timestamp.
func parseControl(oob []byte) (rxNs int64, to [4]byte, ok bool) {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(cm.Len)
		if l < hdr || l > len(oob) {
			break
		}
		switch {
		case cm.Level == unix.SOL_SOCKET && cm.Type == unix.SCM_TIMESTAMPNS && l >= hdr+int(unsafe.Sizeof(unix.Timespec{})):
			rxNs, ok = (*unix.Timespec)(unsafe.Pointer(&oob[hdr])).Nano(), true
		case cm.Level == unix.IPPROTO_IP && cm.Type == unix.IP_PKTINFO && l >= hdr+unix.SizeofInet4Pktinfo:
			to = (*unix.Inet4Pktinfo)(unsafe.Pointer(&oob[hdr])).Addr
		}
		next := unix.CmsgSpace(l - hdr)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return rxNs, to, ok
}

// openSocket makes the generator's UDP socket: bound to the wildcard
// address, so that it receives the replies to every 127.0.0.0/8 source it
// sends from, with kernel receive timestamps and each datagram's
// destination address.
func openSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("roughtimebench: socket: %w", err)
	}
	tv := unix.NsecToTimeval(int64(5 * time.Millisecond))
	for _, step := range []func() error{
		func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) },
		func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1) },
		func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20) },
		func() error { return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv) },
		func() error { return unix.Bind(fd, &unix.SockaddrInet4{}) },
	} {
		if err := step(); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("roughtimebench: generator socket: %w", err)
		}
	}
	return fd, nil
}

func sendAll(fd int, msgs []unix.Mmsghdr) error {
	for len(msgs) > 0 {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])),
			uintptr(len(msgs)), 0, 0, 0)
		switch e {
		case 0:
			msgs = msgs[n:]
		case unix.EINTR, unix.EAGAIN:
		case unix.ECONNREFUSED:
			// A datagram refused (server gone) is lost like any other.
			msgs = msgs[1:]
		default:
			return fmt.Errorf("roughtimebench: sendmmsg: %w", e)
		}
	}
	return nil
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort() (netip.AddrPort, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("roughtimebench: free port: %w", err)
	}
	defer c.Close()
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
