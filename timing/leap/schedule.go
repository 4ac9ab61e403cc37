package leap

import (
	"sort"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

// Status is what the node publishes about leap seconds at one instant: for
// the kernel (SyncStatus.Leap and TAIOffset), the NTP leap indicator and the
// attestation.
type Status struct {
	TAIOffset int        // TAI-UTC in seconds, 0 before 1972
	Leap      clock.Leap // leap second at the end of the current UTC day
	Expired   bool       // the list is past its expiry: leaps announced since are unknown
	Expires   time.Time  // the list's expiry
}

// At returns TAI-UTC at the UTC instant utc and the leap second, if any,
// that ends utc's UTC day. Before the first entry (1972) TAI-UTC was not a
// whole number of seconds and At returns 0. At answers from the list even
// when it has expired; see Expired.
func (s *Schedule) At(utc time.Time) (tai int, leap clock.Leap) {
	utc = utc.UTC()
	// i is the number of entries in force at utc.
	i := sort.Search(len(s.Entries), func(i int) bool { return s.Entries[i].Start.After(utc) })
	if i > 0 {
		tai = s.Entries[i-1].TAIOffset
	}
	if i == len(s.Entries) || i == 0 {
		return tai, clock.LeapNone
	}
	next := s.Entries[i]
	y, m, d := utc.Date()
	if !next.Start.Equal(time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)) {
		return tai, clock.LeapNone
	}
	if next.TAIOffset > tai {
		return tai, clock.LeapInsert
	}
	return tai, clock.LeapDelete
}

// Expired reports whether the list has expired at now. An expired list is
// a warning, not an error: its entries stay true, but a leap second
// announced after it was written would be missed, so the node should say
// so (log, metric, health detail) and get a fresh tzdata.
func (s *Schedule) Expired(now time.Time) bool { return !now.Before(s.Expires) }

// Status returns the leap status to publish at now.
func (s *Schedule) Status(now time.Time) Status {
	tai, leap := s.At(now)
	return Status{TAIOffset: tai, Leap: leap, Expired: s.Expired(now), Expires: s.Expires}
}
