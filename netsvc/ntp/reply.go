package ntp

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

// Status is what the timing state tells the server to publish. The status
// function passed to NewServer is called once per received batch, so it must
// be cheap and safe for concurrent use (an atomic.Pointer load).
type Status struct {
	Synchronized   bool          // locked, or in holdover within bound
	Stratum        uint8         // served stratum while synchronized; 0 means 1
	RefID          [4]byte       // "GPS\x00" or "PPS\x00", published at stratum 1
	UpstreamRefID  [4]byte       // published above stratum 1 (RefIDFromAddress); zero: LocalRefID
	RefTime        time.Time     // last discipline update
	RootDispersion time.Duration // from the published error bound
	Leap           clock.Leap    // pending leap second at the end of the UTC day
	Precision      int8          // log2 seconds; 0 means use the measured value
}

// Kiss codes sent in the reference ID of stratum-0 packets.
var (
	KissRate = [4]byte{'R', 'A', 'T', 'E'}
	KissInit = [4]byte{'I', 'N', 'I', 'T'}
)

// LocalRefID is the reference id published above stratum 1 when no
// upstream address is configured: 127.127.1.1, the pseudo-address of
// ntpd's local clock driver that chrony also sends for `local stratum N`.
// It is an address, as RFC 5905 §7.3 wants above stratum 1, that no
// client can hold, so the client's loop detection never misfires, where
// the ASCII "PPS" would read as the public address 80.80.83.0.
var LocalRefID = [4]byte{127, 127, 1, 1}

// RefIDFromAddress returns the reference id that names the upstream server
// addr above stratum 1 (RFC 5905 §7.3): the four octets of an IPv4
// address, or the first four octets of the MD5 of an IPv6 address.
func RefIDFromAddress(addr string) ([4]byte, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return [4]byte{}, fmt.Errorf("ntp: reference address %q: %w", addr, err)
	}
	if ip.IsUnspecified() {
		return [4]byte{}, fmt.Errorf("ntp: reference address %q: unspecified", addr)
	}
	if ip = ip.Unmap(); ip.Is4() {
		return ip.As4(), nil
	}
	a := ip.As16()
	sum := md5.Sum(a[:])
	return [4]byte(sum[:4]), nil
}

// maxStratum is the largest stratum a synchronized server may advertise.
const maxStratum = 15

// ServerHeader returns the header of a reply to req, with receive timestamp
// rx and transmit timestamp tx, under status st; precision is used when
// st.Precision is 0. While st is unsynchronized the reply carries leap
// indicator 3, stratum 0 and kiss code INIT, which clients reject.
func ServerHeader(req *Header, st *Status, precision int8, rx, tx Timestamp) Header {
	h := Header{
		Version:        req.Version,
		Mode:           ModeServer,
		Poll:           req.Poll,
		Precision:      precision,
		RootDelay:      0,
		RootDispersion: ShortFromDuration(st.RootDispersion),
		RefID:          st.RefID,
		RefTime:        TimestampFromTime(st.RefTime),
		OrigTime:       req.TxTime,
		RxTime:         rx,
		TxTime:         tx,
	}
	if st.Precision != 0 {
		h.Precision = st.Precision
	}
	if !st.Synchronized {
		h.Leap = LeapAlarm
		h.Stratum = 0
		h.RefID = KissInit
		return h
	}
	switch st.Leap {
	case clock.LeapInsert:
		h.Leap = LeapAddSecond
	case clock.LeapDelete:
		h.Leap = LeapDelSecond
	default:
		h.Leap = LeapNoWarning
	}
	h.Stratum = st.Stratum
	if h.Stratum == 0 {
		h.Stratum = 1
	}
	if h.Stratum >= 2 {
		h.RefID = st.UpstreamRefID
		if h.RefID == ([4]byte{}) {
			h.RefID = LocalRefID
		}
	}
	if h.Stratum > maxStratum {
		// A misconfigured stratum would make us look synchronized at a
		// stratum clients cannot use; say "unsynchronized" instead.
		h.Leap = LeapAlarm
		h.Stratum = 0
		h.RefID = KissInit
	}
	return h
}

// KoDHeader returns a kiss-o'-death reply to req with the given kiss code.
// Like ntpd it reveals no time: the origin, receive and transmit timestamps
// all echo the request's transmit timestamp, so the client can match the
// reply to its request and nothing else.
func KoDHeader(req *Header, code [4]byte) Header {
	return Header{
		Leap:     LeapAlarm,
		Version:  req.Version,
		Mode:     ModeServer,
		Stratum:  0,
		Poll:     req.Poll,
		RefID:    code,
		OrigTime: req.TxTime,
		RxTime:   req.TxTime,
		TxTime:   req.TxTime,
	}
}

// putTxTime overwrites the transmit timestamp of an encoded header.
func putTxTime(b []byte, tx Timestamp) {
	binary.BigEndian.PutUint64(b[40:48], uint64(tx))
}
