package gnss

import (
	"fmt"
	"time"
)

// TimeOfDay is a UTC time of day as a receiver writes it (hhmmss.sss).
// Second may be 60 during a leap second.
type TimeOfDay struct {
	Hour, Minute, Second, Millisecond int
}

// Date is a calendar date.
type Date struct {
	Year, Month, Day int
}

// ParseTimeOfDay parses "hhmmss" with an optional fraction ("hhmmss.f…"),
// hh<=23, mm<=59, ss<=60. Fraction digits past milliseconds are truncated.
func ParseTimeOfDay(s string) (TimeOfDay, bool) {
	if len(s) < 6 || !digits(s[:6]) {
		return TimeOfDay{}, false
	}
	t := TimeOfDay{Hour: atoi2(s[0:2]), Minute: atoi2(s[2:4]), Second: atoi2(s[4:6])}
	if t.Hour > 23 || t.Minute > 59 || t.Second > 60 {
		return TimeOfDay{}, false
	}
	if len(s) == 6 {
		return t, true
	}
	if s[6] != '.' || !digits(s[7:]) {
		return TimeOfDay{}, false
	}
	scale := 100
	for i := 7; i < len(s) && scale > 0; i++ {
		t.Millisecond += int(s[i]-'0') * scale
		scale /= 10
	}
	return t, true
}

// ParseDDMMYY parses an RMC date. Two-digit years follow the NMEA habit:
// YY>=80 is 19YY, otherwise 20YY (so 050180 is 1980-01-05 and 220899 is
// 1999-08-22). The date must exist in the calendar.
func ParseDDMMYY(s string) (Date, bool) {
	if len(s) != 6 || !digits(s) {
		return Date{}, false
	}
	d := Date{Day: atoi2(s[0:2]), Month: atoi2(s[2:4]), Year: atoi2(s[4:6])}
	if d.Year >= 80 {
		d.Year += 1900
	} else {
		d.Year += 2000
	}
	return d, d.valid()
}

// ParseZDADate parses ZDA's day, month and four-digit year fields.
func ParseZDADate(day, month, year string) (Date, bool) {
	if len(day) == 0 || len(day) > 2 || len(month) == 0 || len(month) > 2 || len(year) != 4 ||
		!digits(day) || !digits(month) || !digits(year) {
		return Date{}, false
	}
	d := Date{Day: atoiN(day), Month: atoiN(month), Year: atoiN(year)}
	return d, d.valid()
}

// valid reports whether d is a real calendar date.
func (d Date) valid() bool {
	if d.Month < 1 || d.Month > 12 || d.Day < 1 {
		return false
	}
	t := time.Date(d.Year, time.Month(d.Month), d.Day, 0, 0, 0, 0, time.UTC)
	return t.Day() == d.Day && int(t.Month()) == d.Month
}

// Time combines a date and a time of day into a UTC instant. A leap second
// (ss=60) is represented as the following second, as time.Time cannot name
// 23:59:60; FormatUTC keeps the receiver's own figures.
func (d Date) Time(t TimeOfDay) time.Time {
	return time.Date(d.Year, time.Month(d.Month), d.Day, t.Hour, t.Minute, t.Second,
		t.Millisecond*int(time.Millisecond), time.UTC)
}

// FormatUTC writes a date and time of day as YYYY-MM-DDTHH:MM:SS.sssZ, the
// format of expected.json, keeping a leap second's :60.
func FormatUTC(d Date, t TimeOfDay) string {
	return fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		d.Year, d.Month, d.Day, t.Hour, t.Minute, t.Second, t.Millisecond)
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi2(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }

func atoiN(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
