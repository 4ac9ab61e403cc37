package sitetest

import (
	"time"

	"github.com/aunsorm/timenode/timing/leap"
)

// LeapList is a leap-seconds.list in the IETF format, with a correct #h
// hash, updated at updated and expiring at expires. Its entries are the
// real ones from 1972 to the leap second of 2016-12-31 (TAI−UTC 37 s), so
// a list made relative to an injected time reads like the one IERS
// publishes without depending on the host's tzdata or today's date.
func LeapList(updated, expires time.Time) []byte {
	s := leap.Schedule{Updated: updated.UTC().Truncate(time.Second), Expires: expires.UTC().Truncate(time.Second)}
	// The first entry, then one per leap second (TAI−UTC 11 s to 37 s).
	starts := []string{"1972-01-01", "1972-07-01", "1973-01-01", "1974-01-01", "1975-01-01", "1976-01-01",
		"1977-01-01", "1978-01-01", "1979-01-01", "1980-01-01", "1981-07-01", "1982-07-01", "1983-07-01",
		"1985-07-01", "1988-01-01", "1990-01-01", "1991-01-01", "1992-07-01", "1993-07-01", "1994-07-01",
		"1996-01-01", "1997-07-01", "1999-01-01", "2006-01-01", "2009-01-01", "2012-07-01", "2015-07-01", "2017-01-01"}
	for i, d := range starts {
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			panic(err)
		}
		s.Entries = append(s.Entries, leap.Entry{Start: t, TAIOffset: 10 + i})
	}
	return s.Marshal()
}
