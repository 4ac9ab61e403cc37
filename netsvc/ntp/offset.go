package ntp

import "time"

// offsetTries and offsetGoodGap bound clockOffset: a read triple whose
// host readings are this close is taken at once; otherwise the tightest
// of offsetTries triples.
const (
	offsetTries   = 3
	offsetGoodGap = 20 * time.Microsecond
)

// clockOffset returns disciplined - host (ns) from (host, disciplined,
// host) reads, with the disciplined reading and the last host reading of
// the triple used. The error is at most half the gap between the two host
// readings, so a triple the scheduler cut in two (seen: 2 ms in a loaded
// qemu guest, which put a served receive time 1 ms before the request was
// sent) is read again, up to offsetTries times, keeping the tightest.
func clockOffset(host, disciplined func() time.Time) (offsetNs int64, disc, hostAfter time.Time) {
	best := time.Duration(-1)
	for range offsetTries {
		h0 := host()
		d := disciplined()
		h1 := host()
		gap := h1.Sub(h0)
		if best < 0 || gap < best {
			best = gap
			mid := h0.UnixNano() + int64(gap)/2
			offsetNs, disc, hostAfter = d.UnixNano()-mid, d, h1
		}
		if gap <= offsetGoodGap {
			break
		}
	}
	return offsetNs, disc, hostAfter
}
