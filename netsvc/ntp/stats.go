package ntp

import "sync/atomic"

// DropReason says why a received packet got no reply.
type DropReason int

// Drop reasons, in the order of Stats.Drops.
const (
	DropShort       DropReason = iota // shorter than 48 bytes
	DropVersion                       // version other than 3 or 4
	DropMode                          // not client mode (control, private, symmetric, broadcast, server)
	DropMalformed                     // bad extension field or MAC layout
	DropTruncated                     // larger than the receive buffer
	DropRateLimited                   // over the client's rate, KoD already sent recently
	DropSendError                     // the reply could not be sent
	NumDropReasons                    // number of drop reasons
)

// String returns the reason as a snake_case metric label value.
func (r DropReason) String() string {
	switch r {
	case DropShort:
		return "short"
	case DropVersion:
		return "bad_version"
	case DropMode:
		return "bad_mode"
	case DropMalformed:
		return "malformed"
	case DropTruncated:
		return "truncated"
	case DropRateLimited:
		return "rate_limited"
	case DropSendError:
		return "send_error"
	default:
		return "unknown"
	}
}

// Stats is a snapshot of the server's counters since it was created. All
// fields are monotonic counters; per-second rates are the collector's job.
type Stats struct {
	Requests uint64 // packets received
	Replies  uint64 // replies sent, synchronized or not, excluding KoD
	KoDSent  uint64 // KoD RATE replies sent
	// Unsynchronized counts replies sent with leap indicator 3 because the
	// status said the clock was not synchronized (included in Replies).
	Unsynchronized uint64
	// NoKernelTimestamp counts packets that arrived without a kernel
	// receive timestamp and were stamped when read instead.
	NoKernelTimestamp uint64
	// NTSReplies counts authenticated NTS replies (included in Replies).
	NTSReplies uint64
	// NTSNAKs counts NTS NAKs sent to requests that failed authentication.
	NTSNAKs uint64
	Drops   [NumDropReasons]uint64 // indexed by DropReason
}

// Dropped returns the total of all drop counters.
func (s Stats) Dropped() uint64 {
	var n uint64
	for _, d := range s.Drops {
		n += d
	}
	return n
}

// counters is one worker's set of counters, padded so that workers do not
// share cache lines.
type counters struct {
	requests       atomic.Uint64
	replies        atomic.Uint64
	kod            atomic.Uint64
	unsynchronized atomic.Uint64
	noKernelTS     atomic.Uint64
	ntsReplies     atomic.Uint64
	ntsNAKs        atomic.Uint64
	drops          [NumDropReasons]atomic.Uint64
	_              [64]byte
}

// batchCounts accumulates one batch's counts before they are published.
type batchCounts struct {
	requests, replies, kod, unsynchronized, noKernelTS uint64
	ntsReplies, ntsNAKs                                uint64
	drops                                              [NumDropReasons]uint64
}

func (c *counters) add(b *batchCounts) {
	c.requests.Add(b.requests)
	c.replies.Add(b.replies)
	if b.kod != 0 {
		c.kod.Add(b.kod)
	}
	if b.unsynchronized != 0 {
		c.unsynchronized.Add(b.unsynchronized)
	}
	if b.noKernelTS != 0 {
		c.noKernelTS.Add(b.noKernelTS)
	}
	if b.ntsReplies != 0 {
		c.ntsReplies.Add(b.ntsReplies)
	}
	if b.ntsNAKs != 0 {
		c.ntsNAKs.Add(b.ntsNAKs)
	}
	for i, d := range b.drops {
		if d != 0 {
			c.drops[i].Add(d)
		}
	}
	*b = batchCounts{}
}

func (c *counters) snapshot(s *Stats) {
	s.Requests += c.requests.Load()
	s.Replies += c.replies.Load()
	s.KoDSent += c.kod.Load()
	s.Unsynchronized += c.unsynchronized.Load()
	s.NoKernelTimestamp += c.noKernelTS.Load()
	s.NTSReplies += c.ntsReplies.Load()
	s.NTSNAKs += c.ntsNAKs.Load()
	for i := range c.drops {
		s.Drops[i] += c.drops[i].Load()
	}
}
