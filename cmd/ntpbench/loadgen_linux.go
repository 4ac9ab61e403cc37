package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/aunsorm/timenode/cmd/internal/benchrun"
	"github.com/aunsorm/timenode/cmd/internal/proccpu"
	"github.com/aunsorm/timenode/netsvc/ntp"
)

// loadMode is how the generator moves its requests.
type loadMode int

const (
	// modeBatch: one connected socket, requests and replies moved in
	// batches of loadConfig.batch per sendmmsg/recvmmsg.
	modeBatch loadMode = iota
	// modeSockets: loadConfig.inflight connected sockets with one request
	// each, one send and one receive system call per request.
	modeSockets
	// modeMix: one socket sending from many source addresses in
	// 127.0.0.0/8 (IP_PKTINFO per message), batched: ordinary clients
	// spread over mixClients addresses, and one request in mixHotEvery
	// from a few hot addresses far over any rate limit.
	modeMix
)

// The realistic mix: 2^20 ordinary client addresses, so that at 100 000
// requests/s each sends one about every 10 s and stays under the servers'
// rate limit (1 per second sustained, bursts of 16); and 1 request in 16
// from 16 hot addresses at thousands per second each, which both servers
// limit. Hot requests hold no slot: they are sent with the batches and
// their replies (KoD or let through) are counted, not awaited.
const (
	mixClients  = 1 << 20
	mixHot      = 16
	mixHotEvery = 16
	hotID       = 0xffffffff // slot id carried by hot requests
)

// loadConfig is one load run: keep inflight requests outstanding against
// addr.
type loadConfig struct {
	addr      netip.AddrPort
	mode      loadMode
	proto     proto
	inflight  int
	batch     int
	warmup    time.Duration
	duration  time.Duration
	timeout   time.Duration // a request unanswered this long is counted lost and resent
	cpu       int           // CPU the generator thread is pinned to; -1: none
	serverPID int           // process whose CPU time is measured; 0: none
}

// loadResult is what one run measured after the warm-up: Replies are
// answers received (slot replies, KoDs and hot answers), Lost slot
// requests unanswered within the timeout, Bad replies that failed the
// protocol's checks (the NTS authenticator), Stray replies matching no
// outstanding request; and what only NTP has.
type loadResult struct {
	benchrun.Sample
	kod       uint64 // KoD replies (rate limiting), included in Replies
	nak       uint64 // NTS NAKs, not counted as replies
	hotSent   uint64 // requests from hot addresses
	hotAnswer uint64 // of them answered (KoD or not), included in Replies
	noKernTS  uint64 // replies without a kernel receive timestamp
	// txLags are, per reply with a kernel receive timestamp, how long
	// after its transmit timestamp it reached the client's socket: the
	// time a reply waits after T3 is an error its client cannot tell from
	// path asymmetry (half of it goes into the offset). Sorted after merge.
	txLags []time.Duration
}

// merge pools another round's measurements into r, keeping RTTs sorted.
func (r *loadResult) merge(o loadResult) {
	r.Sample.Merge(o.Sample)
	r.kod += o.kod
	r.nak += o.nak
	r.hotSent += o.hotSent
	r.hotAnswer += o.hotAnswer
	r.noKernTS += o.noKernTS
	r.txLags = append(r.txLags, o.txLags...)
	slices.Sort(r.txLags)
}

// txLag is how long after the transmit timestamp of reply pkt (a server
// reply of at least 48 bytes) it was received at rxNs.
func txLag(pkt []byte, rxNs int64) time.Duration {
	rx := time.Unix(0, rxNs)
	return rx.Sub(ntp.Timestamp(binary.BigEndian.Uint64(pkt[40:48])).Time(rx))
}

const (
	pktLen  = 48
	bufLen  = 1024 // room for any request or reply, NTS ones included
	oobLen  = 64
	ctlLen  = 32 // one IP_PKTINFO control message
	maxSock = 1024
)

// replyKind is what a reply turned out to be.
type replyKind uint8

const (
	replyOK  replyKind = iota
	replyKoD           // kiss-o'-death other than an NTS NAK (RATE)
	replyNAK           // NTS NAK
	replyBad           // not a valid reply for this protocol
)

// proto builds requests and checks replies of one flavour of NTP.
type proto interface {
	// request writes a client request with transmit timestamp tx into b
	// (bufLen bytes) and returns its length.
	request(b []byte, tx uint64) int
	// reply checks a reply and returns the origin timestamp, the
	// transmit timestamp of the request it answers.
	reply(b []byte) (uint64, replyKind)
}

// plainNTP is unauthenticated NTPv4: 48-byte requests.
type plainNTP struct{}

func (plainNTP) request(b []byte, tx uint64) int {
	clear(b[:pktLen])
	// LI 0, version 4, mode 3 (client), poll 6.
	b[0], b[2] = 0x23, 6
	binary.BigEndian.PutUint64(b[40:], tx)
	return pktLen
}

func (plainNTP) reply(b []byte) (uint64, replyKind) {
	if len(b) < pktLen || b[0]&7 != ntp.ModeServer {
		return 0, replyBad
	}
	org := binary.BigEndian.Uint64(b[24:])
	if b[1] == 0 {
		if [4]byte(b[12:16]) == ntp.KissNTSN {
			return org, replyNAK
		}
		return org, replyKoD
	}
	return org, replyOK
}

// slot is one outstanding request. Its transmit timestamp carries the slot
// index in the low 32 bits and a sequence number in the high 32, so a reply's
// origin timestamp names the request it answers; a late reply to a request
// already counted lost has an old sequence number and is ignored.
type slot struct {
	seq    uint32
	sentNs int64 // CLOCK_REALTIME when handed to the kernel
	queued bool
}

// tracker keeps the slots, the send queue and the counts of one run.
type tracker struct {
	cfg       loadConfig
	slots     []slot
	queue     []int
	res       loadResult
	measuring bool
	cpuStart  uint64
	genStart  time.Duration
	measureAt time.Time
	hotSeq    uint32
}

func newTracker(cfg loadConfig) *tracker {
	t := &tracker{cfg: cfg, slots: make([]slot, cfg.inflight), queue: make([]int, 0, cfg.inflight)}
	for i := range t.slots {
		t.queue = append(t.queue, i)
		t.slots[i].queued = true
	}
	t.res.RTTs = make([]time.Duration, 0, 1<<20)
	return t
}

func (t *tracker) tx(id int) uint64 { return uint64(t.slots[id].seq)<<32 | uint64(id) }

// tick starts the measurement when the warm-up is over and tells whether
// the run is over. The server's CPU time is read at both ends.
func (t *tracker) tick(now time.Time, start time.Time) (done bool, err error) {
	if !t.measuring && now.Sub(start) >= t.cfg.warmup {
		t.measuring = true
		t.res = loadResult{Sample: benchrun.Sample{RTTs: t.res.RTTs[:0]}}
		t.measureAt = now
		t.genStart = proccpu.ThreadCPU()
		if t.cfg.serverPID > 0 {
			if t.cpuStart, err = proccpu.Ticks(t.cfg.serverPID); err != nil {
				return true, err
			}
		}
	}
	if t.measuring && now.Sub(t.measureAt) >= t.cfg.duration {
		t.res.Elapsed = now.Sub(t.measureAt)
		t.res.GenCPU = proccpu.ThreadCPU() - t.genStart
		if t.cfg.serverPID > 0 {
			end, err := proccpu.Ticks(t.cfg.serverPID)
			if err != nil {
				return true, err
			}
			t.res.CPUTicks = end - t.cpuStart
		}
		slices.Sort(t.res.RTTs)
		return true, nil
	}
	return false, nil
}

// sent records that slot id went out at ns.
func (t *tracker) sent(id int, ns int64) {
	t.slots[id].sentNs = ns
	t.slots[id].queued = false
}

func (t *tracker) hotSent() {
	t.hotSeq++
	if t.measuring {
		t.res.hotSent++
	}
}

// received accounts for one datagram; rxNs is its kernel receive time.
func (t *tracker) received(pkt []byte, rxNs int64, kernTS bool) {
	org, kind := t.cfg.proto.reply(pkt)
	m := t.measuring
	if kind == replyBad || kind == replyNAK {
		if m {
			if kind == replyNAK {
				t.res.nak++
			} else {
				t.res.Bad++
			}
		}
		// The slot, if any, is freed by the timeout sweep: a NAK or a
		// forged reply must not look like an answer.
		return
	}
	id, seq := int(uint32(org)), uint32(org>>32)
	if id == hotID {
		if m {
			t.res.Replies++
			t.res.hotAnswer++
			if kind == replyKoD {
				t.res.kod++
			}
		}
		return
	}
	if id >= len(t.slots) || t.slots[id].seq != seq || t.slots[id].queued {
		if m {
			t.res.Stray++
		}
		return
	}
	if m {
		if !kernTS {
			t.res.noKernTS++
		}
		t.res.Replies++
		if kind == replyKoD {
			t.res.kod++
		}
		t.res.RTTs = append(t.res.RTTs, time.Duration(rxNs-t.slots[id].sentNs))
		if kernTS && kind == replyOK {
			t.res.txLags = append(t.res.txLags, txLag(pkt, rxNs))
		}
	}
	t.requeue(id)
}

func (t *tracker) requeue(id int) {
	t.slots[id].seq++
	t.slots[id].queued = true
	t.queue = append(t.queue, id)
}

// sweep requeues requests unanswered for longer than the timeout.
func (t *tracker) sweep(now time.Time) {
	cut := now.UnixNano() - int64(t.cfg.timeout)
	for id := range t.slots {
		if !t.slots[id].queued && t.slots[id].sentNs < cut {
			if t.measuring {
				t.res.Lost++
			}
			t.requeue(id)
		}
	}
}

// runLoad drives one server on a locked OS thread pinned to cfg.cpu. Round
// trips run from just before the send to the client kernel's receive
// timestamp, so the generator's own scheduling does not inflate them.
func runLoad(cfg loadConfig) (loadResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restore, err := proccpu.PinThread(cfg.cpu)
	if err != nil {
		return loadResult{}, err
	}
	defer restore()
	if cfg.mode == modeSockets {
		return runSockets(cfg)
	}
	return runBatched(cfg)
}

// runBatched is modeBatch and modeMix.
func runBatched(cfg loadConfig) (loadResult, error) {
	mix := cfg.mode == modeMix
	fd, err := openSocket(cfg.addr, !mix)
	if err != nil {
		return loadResult{}, err
	}
	defer unix.Close(fd)

	t := newTracker(cfg)
	sbuf := make([]byte, cfg.batch*bufLen)
	siov := make([]unix.Iovec, cfg.batch)
	smsg := make([]unix.Mmsghdr, cfg.batch)
	rbuf := make([]byte, cfg.batch*bufLen)
	oob := make([]byte, cfg.batch*oobLen)
	riov := make([]unix.Iovec, cfg.batch)
	rmsg := make([]unix.Mmsghdr, cfg.batch)
	ctl := make([]byte, cfg.batch*ctlLen)
	var dst unix.RawSockaddrInet4
	tmpl := unix.PktInfo4(&unix.Inet4Pktinfo{})
	if len(tmpl) > ctlLen {
		return loadResult{}, fmt.Errorf("ntpbench: IP_PKTINFO message of %d bytes", len(tmpl))
	}
	specDst := unix.CmsgLen(0) + 4 // Inet4Pktinfo: Ifindex int32, then Spec_dst
	if mix {
		dst.Family = unix.AF_INET
		dst.Addr = cfg.addr.Addr().As4()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&dst.Port))[:], cfg.addr.Port())
	}
	for i := range cfg.batch {
		siov[i].Base, riov[i].Base = &sbuf[i*bufLen], &rbuf[i*bufLen]
		riov[i].SetLen(bufLen)
		smsg[i].Hdr.Iov, rmsg[i].Hdr.Iov = &siov[i], &riov[i]
		smsg[i].Hdr.SetIovlen(1)
		rmsg[i].Hdr.SetIovlen(1)
		rmsg[i].Hdr.Control = &oob[i*oobLen]
		if mix {
			smsg[i].Hdr.Name = (*byte)(unsafe.Pointer(&dst))
			smsg[i].Hdr.Namelen = unix.SizeofSockaddrInet4
			copy(ctl[i*ctlLen:], tmpl)
			smsg[i].Hdr.Control = &ctl[i*ctlLen]
			smsg[i].Hdr.SetControllen(len(tmpl))
		}
	}
	var client uint32
	setSource := func(j int, a [4]byte) { copy(ctl[j*ctlLen+specDst:], a[:]) }

	start := time.Now()
	lastSweep := start
	for {
		now := time.Now()
		done, err := t.tick(now, start)
		if err != nil || done {
			return t.res, err
		}
		// Send everything queued, a batch at a time.
		for len(t.queue) > 0 {
			sentNs := time.Now().UnixNano()
			n, used := 0, 0
			for n < cfg.batch && used < len(t.queue) {
				b := sbuf[n*bufLen : (n+1)*bufLen]
				if mix && client%mixHotEvery == mixHotEvery-1 {
					client++
					t.hotSent()
					siov[n].SetLen(cfg.proto.request(b, uint64(t.hotSeq)<<32|hotID))
					setSource(n, [4]byte{127, 1, 0, byte(1 + t.hotSeq%mixHot)})
					n++
					continue
				}
				id := t.queue[used]
				used++
				t.sent(id, sentNs)
				siov[n].SetLen(cfg.proto.request(b, t.tx(id)))
				if mix {
					c := client % mixClients
					client++
					setSource(n, [4]byte{127, byte(16 + c>>16), byte(c >> 8), byte(c)})
				}
				n++
			}
			if err := sendAll(fd, smsg[:n]); err != nil {
				return t.res, err
			}
			t.queue = append(t.queue[:0], t.queue[used:]...)
		}
		// Receive whatever has arrived, waiting at most the socket timeout.
		for i := range rmsg {
			rmsg[i].Hdr.SetControllen(oobLen)
		}
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&rmsg[0])),
			uintptr(cfg.batch), unix.MSG_WAITFORONE, 0, 0)
		switch e {
		case 0:
		case unix.EAGAIN, unix.EINTR, unix.ECONNREFUSED:
			n = 0
		default:
			return t.res, fmt.Errorf("ntpbench: recvmmsg from %s: %w", cfg.addr, e)
		}
		for i := range int(n) {
			rxNs, ok := ntp.KernelTimestamp(oob[i*oobLen : i*oobLen+int(rmsg[i].Hdr.Controllen)])
			if !ok {
				rxNs = time.Now().UnixNano()
			}
			t.received(rbuf[i*bufLen:i*bufLen+int(rmsg[i].Len)], rxNs, ok)
		}
		if now.Sub(lastSweep) > cfg.timeout/4 {
			lastSweep = now
			t.sweep(now)
		}
	}
}

// runSockets is modeSockets: socket i carries slot i.
func runSockets(cfg loadConfig) (loadResult, error) {
	if cfg.inflight > maxSock {
		return loadResult{}, fmt.Errorf("ntpbench: %d sockets, at most %d", cfg.inflight, maxSock)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return loadResult{}, fmt.Errorf("ntpbench: epoll: %w", err)
	}
	defer unix.Close(ep)
	fds := make([]int, cfg.inflight)
	defer func() {
		for _, fd := range fds {
			if fd > 0 {
				unix.Close(fd)
			}
		}
	}()
	for i := range fds {
		if fds[i], err = openSocket(cfg.addr, true); err != nil {
			return loadResult{}, err
		}
		if err := unix.SetNonblock(fds[i], true); err != nil {
			return loadResult{}, fmt.Errorf("ntpbench: nonblock: %w", err)
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fds[i], &ev); err != nil {
			return loadResult{}, fmt.Errorf("ntpbench: epoll_ctl: %w", err)
		}
	}
	t := newTracker(cfg)
	buf := make([]byte, bufLen)
	oob := make([]byte, oobLen)
	events := make([]unix.EpollEvent, len(fds))
	start := time.Now()
	lastSweep := start
	for {
		now := time.Now()
		done, err := t.tick(now, start)
		if err != nil || done {
			return t.res, err
		}
		for _, id := range t.queue {
			n := cfg.proto.request(buf, t.tx(id))
			t.sent(id, time.Now().UnixNano())
			if _, err := unix.Write(fds[id], buf[:n]); err != nil && err != unix.EAGAIN && err != unix.ECONNREFUSED {
				return t.res, fmt.Errorf("ntpbench: send: %w", err)
			}
		}
		t.queue = t.queue[:0]
		ne, err := unix.EpollWait(ep, events, 5)
		if err != nil && err != unix.EINTR {
			return t.res, fmt.Errorf("ntpbench: epoll_wait: %w", err)
		}
		for _, ev := range events[:max(ne, 0)] {
			fd := fds[ev.Fd]
			for {
				n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
				if err != nil {
					break
				}
				rxNs, ok := ntp.KernelTimestamp(oob[:oobn])
				if !ok {
					rxNs = time.Now().UnixNano()
				}
				t.received(buf[:n], rxNs, ok)
			}
		}
		if now.Sub(lastSweep) > cfg.timeout/4 {
			lastSweep = now
			t.sweep(now)
		}
	}
}

// openSocket makes a UDP socket with kernel receive timestamps, connected
// to addr, or (connect false) bound to the wildcard address so that it
// receives the replies to every 127.0.0.0/8 source it sends from.
func openSocket(addr netip.AddrPort, connect bool) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("ntpbench: socket: %w", err)
	}
	tv := unix.NsecToTimeval(int64(5 * time.Millisecond))
	last := func() error {
		return unix.Connect(fd, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()})
	}
	if !connect {
		last = func() error { return unix.Bind(fd, &unix.SockaddrInet4{}) }
	}
	for _, step := range []func() error{
		func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) },
		func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20) },
		func() error { return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv) },
		last,
	} {
		if err := step(); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("ntpbench: socket to %s: %w", addr, err)
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
		case unix.EINTR, unix.EAGAIN, unix.ECONNREFUSED:
			// A refused datagram (server not up yet) is lost like any other.
			if e == unix.ECONNREFUSED {
				msgs = msgs[1:]
			}
		default:
			return fmt.Errorf("ntpbench: sendmmsg: %w", e)
		}
	}
	return nil
}
