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

	"github.com/aunsorm/timenode/cmd/internal/latency"
	"github.com/aunsorm/timenode/netsvc/ntp"
)

// loadConfig is one load run: keep inflight requests outstanding against
// addr, moving them in batches of batch packets per system call.
type loadConfig struct {
	addr     netip.AddrPort
	inflight int
	batch    int
	warmup   time.Duration
	duration time.Duration
	timeout  time.Duration // a request unanswered this long is counted lost and resent
}

// loadResult is what one run measured after the warm-up.
type loadResult struct {
	replies  uint64
	lost     uint64
	elapsed  time.Duration
	rtts     []time.Duration // sorted
	stray    uint64          // replies matching no outstanding request
	noKernTS uint64          // replies without a kernel receive timestamp
}

// merge pools another round's measurements into r, keeping rtts sorted.
func (r *loadResult) merge(o loadResult) {
	r.replies += o.replies
	r.lost += o.lost
	r.elapsed += o.elapsed
	r.stray += o.stray
	r.noKernTS += o.noKernTS
	r.rtts = append(r.rtts, o.rtts...)
	slices.Sort(r.rtts)
}

func (r loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.replies) / r.elapsed.Seconds()
}

// percentile returns the p-th percentile (0..100) of the sorted round trips.
func (r loadResult) percentile(p float64) time.Duration {
	return latency.Percentile(r.rtts, p)
}

const (
	pktLen = 48
	oobLen = 64
)

// slot is one outstanding request. Its transmit timestamp carries the slot
// index in the low 32 bits and a sequence number in the high 32, so a reply's
// origin timestamp names the request it answers; a late reply to a request
// already counted lost has an old sequence number and is ignored.
type slot struct {
	seq    uint32
	sentNs int64 // CLOCK_REALTIME when handed to sendmmsg
}

// runLoad drives one server from a single connected socket on a locked OS
// thread. Round trips run from just before sendmmsg to the client kernel's
// receive timestamp, so the generator's own scheduling does not inflate them.
func runLoad(cfg loadConfig) (loadResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	fd, err := dialUDP(cfg.addr)
	if err != nil {
		return loadResult{}, err
	}
	defer unix.Close(fd)

	slots := make([]slot, cfg.inflight)
	queue := make([]int, 0, cfg.inflight) // slots waiting to be sent
	for i := range slots {
		queue = append(queue, i)
	}
	sbuf := make([]byte, cfg.batch*pktLen)
	siov := make([]unix.Iovec, cfg.batch)
	smsg := make([]unix.Mmsghdr, cfg.batch)
	rbuf := make([]byte, cfg.batch*pktLen*2)
	oob := make([]byte, cfg.batch*oobLen)
	riov := make([]unix.Iovec, cfg.batch)
	rmsg := make([]unix.Mmsghdr, cfg.batch)
	for i := range cfg.batch {
		siov[i].Base, riov[i].Base = &sbuf[i*pktLen], &rbuf[i*pktLen*2]
		siov[i].SetLen(pktLen)
		riov[i].SetLen(pktLen * 2)
		smsg[i].Hdr.Iov, rmsg[i].Hdr.Iov = &siov[i], &riov[i]
		smsg[i].Hdr.SetIovlen(1)
		rmsg[i].Hdr.SetIovlen(1)
		rmsg[i].Hdr.Control = &oob[i*oobLen]
		// LI 0, version 4, mode 3 (client), poll 6.
		sbuf[i*pktLen], sbuf[i*pktLen+2] = 0x23, 6
	}

	var res loadResult
	start := time.Now()
	measureFrom := start.Add(cfg.warmup)
	end := measureFrom.Add(cfg.duration)
	measuring := false
	lastSweep := start
	res.rtts = make([]time.Duration, 0, 1<<20)

	for {
		now := time.Now()
		if now.After(end) {
			break
		}
		if !measuring && now.After(measureFrom) {
			measuring = true
			res = loadResult{rtts: res.rtts[:0]}
		}
		// Send everything queued, a batch at a time.
		for len(queue) > 0 {
			n := min(len(queue), cfg.batch)
			sentNs := time.Now().UnixNano()
			for j := range n {
				id := queue[j]
				slots[id].sentNs = sentNs
				tx := uint64(slots[id].seq)<<32 | uint64(id)
				binary.BigEndian.PutUint64(sbuf[j*pktLen+40:], tx)
			}
			if err := sendAll(fd, smsg[:n]); err != nil {
				return res, err
			}
			queue = append(queue[:0], queue[n:]...)
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
			return res, fmt.Errorf("ntpbench: recvmmsg from %s: %w", cfg.addr, e)
		}
		for i := range int(n) {
			if rmsg[i].Len < pktLen {
				res.stray++
				continue
			}
			org := binary.BigEndian.Uint64(rbuf[i*pktLen*2+24:])
			id, seq := int(uint32(org)), uint32(org>>32)
			if id >= len(slots) || slots[id].seq != seq {
				res.stray++
				continue
			}
			rxNs, ok := ntp.KernelTimestamp(oob[i*oobLen : i*oobLen+int(rmsg[i].Hdr.Controllen)])
			if !ok {
				rxNs = time.Now().UnixNano()
				res.noKernTS++
			}
			if measuring {
				res.replies++
				res.rtts = append(res.rtts, time.Duration(rxNs-slots[id].sentNs))
			}
			slots[id].seq++
			queue = append(queue, id)
		}
		// Requests unanswered for too long are lost: resend them.
		if now.Sub(lastSweep) > cfg.timeout/4 {
			lastSweep = now
			cut := now.UnixNano() - int64(cfg.timeout)
			for id := range slots {
				if slots[id].sentNs < cut && !slices.Contains(queue, id) {
					if measuring {
						res.lost++
					}
					slots[id].seq++
					queue = append(queue, id)
				}
			}
		}
	}
	res.elapsed = time.Since(measureFrom)
	slices.Sort(res.rtts)
	return res, nil
}

func dialUDP(addr netip.AddrPort) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("ntpbench: socket: %w", err)
	}
	a := addr.Addr().As4()
	tv := unix.NsecToTimeval(int64(5 * time.Millisecond))
	for _, step := range []func() error{
		func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) },
		func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20) },
		func() error { return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv) },
		func() error { return unix.Connect(fd, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: a}) },
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
