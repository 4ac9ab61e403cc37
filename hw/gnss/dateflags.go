package gnss

import "time"

// Further date defects; FlagDefaultDate, FlagWeekRollover and FlagNoDate are
// in fix.go.
const (
	// FlagImplausible is a date before the configured earliest plausible
	// date (Config.MinDate) not explained by a default date or rollover,
	// such as a two-digit year read in the wrong century.
	FlagImplausible DateFlags = 1 << (iota + 3)
	// FlagDateConflict means RMC and ZDA of one epoch named different dates.
	FlagDateConflict
)

// DefaultMinDate is the earliest date the firmware accepts as real when
// Config.MinDate is zero: no appliance running it can be in an earlier year.
var DefaultMinDate = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// rolloverWeeks is the GPS week counter's period (10 bits).
const rolloverWeeks = 1024

// CheckDate returns the defects of date d (a UTC midnight). minDate is the
// earliest plausible date. A date 1024 weeks (or two or three times that,
// within two days) behind a reference is a GPS week rollover; the references
// are lastGood, the last date this stream carried without defects, and now,
// the local clock's reading (either may be zero if unknown).
func CheckDate(d, minDate, lastGood, now time.Time) DateFlags {
	if d.Year() == 1980 && d.Month() == time.January && (d.Day() == 5 || d.Day() == 6) {
		return FlagDefaultDate
	}
	for _, ref := range [2]time.Time{lastGood, now} {
		if !ref.IsZero() && rolledOver(d, ref) {
			return FlagWeekRollover
		}
	}
	if d.Before(minDate.AddDate(0, 0, -1)) {
		return FlagImplausible
	}
	return 0
}

// rolledOver reports whether d is k*1024 weeks (k=1..3, within two days)
// before ref.
func rolledOver(d, ref time.Time) bool {
	const day = 24 * time.Hour
	const period = rolloverWeeks * 7 * day
	behind := ref.Sub(d)
	for k := time.Duration(1); k <= 3; k++ {
		if behind >= k*period-2*day && behind <= k*period+2*day {
			return true
		}
	}
	return false
}
