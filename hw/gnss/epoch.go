package gnss

import (
	"time"

	"github.com/adrianmo/go-nmea"
)

// Assembler groups parsed sentences into epochs (one per UTC second) and
// turns each complete epoch into a Fix. It does no I/O and never reads a
// clock: arrival times are passed in.
//
// Epoch boundaries: a receiver sends a burst of sentences per second, in an
// order that differs between models. An epoch is complete when either
//   - a time-bearing sentence (RMC, ZDA, GGA, GNS) names a different second
//     than the epoch's (Add returns the finished Fix), or
//   - the line goes quiet: the caller calls Flush after a gap (the Receiver
//     uses Config.EpochGap, 50 ms by default), so the Fix leaves about one
//     gap after the last sentence of the burst.
//
// A sentence that names the second already delivered (a burst split by a
// late USB packet, a receiver repeating itself) is dropped together with the
// time-less sentences gathered just before it, so each second yields at most
// one Fix. GLL is not used for boundaries: some receivers (Garmin) stamp it
// one second off their RMC and GGA.
//
// Fix.Valid is set only for a clean date (no DateFlags) and a receiver that
// says it has a fix: RMC status A with a fix mode (A, D, P, R, F or none)
// and, if GGA was sent, a GGA quality of 1-5; or, for timing units that
// send ZDA and GGA but no RMC (HP 58534A), a GGA quality of 1-5. The date
// comes from ZDA (four-digit year) or else RMC; an epoch with neither has
// FlagNoDate and the UTC date 0001-01-01.
//
// An Assembler is not safe for concurrent use.
type Assembler struct {
	// MinDate is the earliest plausible date (DefaultMinDate if zero).
	MinDate time.Time

	open     bool
	e        epoch
	lastSec  int // second of day of the last delivered epoch, -1 if none
	started  bool
	lastGood time.Time
}

// epoch is what has been gathered for the epoch being assembled.
type epoch struct {
	start  time.Time
	sec    int // second of day, -1 while unknown
	tod    TimeOfDay
	todRMC bool

	rmcDate, zdaDate       Date
	hasRMCDate, hasZDADate bool

	rmcSeen, ggaSeen   bool
	rmcStatus, rmcMode string
	ggaQuality         string
	sats               int
	hdop               float64
	lat, lon, alt      float64
	talker             string
	sentences          int
}

// Add adds sentence s whose first byte arrived at at. When s shows that the
// epoch being assembled is complete, its Fix is returned with ok true.
func (a *Assembler) Add(s nmea.Sentence, at time.Time) (fix Fix, ok bool) {
	if !a.started {
		a.started, a.lastSec = true, -1
	}
	tod, hasTime := timeOf(s)
	sec := -1
	if hasTime {
		sec = tod.Hour*3600 + tod.Minute*60 + tod.Second
	}
	if sec >= 0 && a.open && a.e.sec >= 0 && sec != a.e.sec {
		fix, ok = a.Flush()
	}
	if sec >= 0 && sec == a.lastSec {
		// A late sentence of the delivered second: drop it together with
		// the time-less sentences gathered since.
		a.open = false
		return fix, ok
	}
	if !a.open {
		a.open = true
		a.e = epoch{start: at, sec: -1, sats: -1}
	}
	if sec >= 0 && a.e.sec < 0 {
		a.e.sec, a.e.tod = sec, tod
	}
	a.e.merge(s, tod, hasTime)
	return fix, ok
}

// Flush completes the epoch being assembled, as after a quiet gap. It
// returns ok false if nothing is open or the epoch named no time.
func (a *Assembler) Flush() (Fix, bool) {
	if !a.started {
		a.started, a.lastSec = true, -1
	}
	if !a.open {
		return Fix{}, false
	}
	a.open = false
	if a.e.sec < 0 {
		return Fix{}, false
	}
	a.lastSec = a.e.sec
	return a.fix(), true
}

// timeOf returns the time of day named by a time-bearing sentence.
func timeOf(s nmea.Sentence) (TimeOfDay, bool) {
	var t nmea.Time
	switch v := s.(type) {
	case nmea.RMC:
		t = v.Time
	case nmea.ZDA:
		t = v.Time
	case nmea.GGA:
		t = v.Time
	case nmea.GNS:
		t = v.Time
	default:
		return TimeOfDay{}, false
	}
	if !t.Valid || t.Hour > 23 || t.Minute > 59 || t.Second > 60 || t.Hour < 0 || t.Minute < 0 || t.Second < 0 {
		return TimeOfDay{}, false
	}
	ms := t.Millisecond
	if ms < 0 || ms > 999 {
		ms = 0
	}
	return TimeOfDay{Hour: t.Hour, Minute: t.Minute, Second: t.Second, Millisecond: ms}, true
}

// merge records what s says about the epoch.
func (e *epoch) merge(s nmea.Sentence, tod TimeOfDay, hasTime bool) {
	e.sentences++
	switch v := s.(type) {
	case nmea.RMC:
		e.rmcSeen, e.rmcStatus, e.rmcMode = true, v.Validity, v.FFAMode
		if hasTime && !e.todRMC {
			e.tod, e.todRMC = tod, true
		}
		if v.Date.Valid {
			d := Date{Year: v.Date.YY, Month: v.Date.MM, Day: v.Date.DD}
			if d.Year >= 80 {
				d.Year += 1900
			} else {
				d.Year += 2000
			}
			if d.valid() {
				e.rmcDate, e.hasRMCDate = d, true
			}
		}
		e.talker = v.TalkerID()
		if v.Validity == nmea.ValidRMC && e.lat == 0 && e.lon == 0 {
			e.lat, e.lon = v.Latitude, v.Longitude
		}
	case nmea.ZDA:
		d := Date{Year: int(v.Year), Month: int(v.Month), Day: int(v.Day)}
		if v.Year >= 1000 && v.Year <= 9999 && d.valid() {
			e.zdaDate, e.hasZDADate = d, true
		}
		if e.talker == "" {
			e.talker = v.TalkerID()
		}
	case nmea.GGA:
		e.ggaSeen, e.ggaQuality = true, v.FixQuality
		e.sats = int(v.NumSatellites)
		if v.HDOP > 0 {
			e.hdop = v.HDOP
		}
		e.lat, e.lon, e.alt = v.Latitude, v.Longitude, v.Altitude
	case nmea.GNS:
		if !e.ggaSeen {
			e.sats = int(v.SVs)
			e.lat, e.lon, e.alt = v.Latitude, v.Longitude, v.Altitude
			if v.HDOP > 0 {
				e.hdop = v.HDOP
			}
		}
	case nmea.GSA:
		if e.hdop == 0 && v.HDOP > 0 {
			e.hdop = v.HDOP
		}
	}
}

// fix turns the completed epoch into a Fix.
func (a *Assembler) fix() Fix {
	e := &a.e
	f := Fix{
		Received:   e.start,
		Satellites: e.sats,
		HDOP:       e.hdop,
		Latitude:   e.lat,
		Longitude:  e.lon,
		Altitude:   e.alt,
		Talker:     e.talker,
	}
	var d Date
	switch {
	case e.hasZDADate:
		d = e.zdaDate
		if e.hasRMCDate && e.rmcDate != e.zdaDate {
			f.Flags |= FlagDateConflict
		}
	case e.hasRMCDate:
		d = e.rmcDate
	default:
		f.Flags |= FlagNoDate
		d = Date{Year: 1, Month: 1, Day: 1}
	}
	f.UTC = d.Time(e.tod)
	if f.Flags&FlagNoDate == 0 {
		minDate := a.MinDate
		if minDate.IsZero() {
			minDate = DefaultMinDate
		}
		midnight := time.Date(d.Year, time.Month(d.Month), d.Day, 0, 0, 0, 0, time.UTC)
		f.Flags |= CheckDate(midnight, minDate, a.lastGood, e.start)
		if f.Flags == 0 {
			a.lastGood = midnight
		}
	}
	// Valid needs a clean date and the receiver's word that it has a fix:
	// RMC status A with a fix mode (and a fix quality in GGA if sent), or,
	// for timing units that send no RMC (ZDA+GGA), a fix quality in GGA.
	switch {
	case f.Flags != 0:
	case e.rmcSeen:
		f.Valid = e.rmcStatus == nmea.ValidRMC && goodMode(e.rmcMode) && (!e.ggaSeen || goodQuality(e.ggaQuality))
	case e.ggaSeen:
		f.Valid = goodQuality(e.ggaQuality)
	}
	return f
}

// goodMode accepts the RMC mode indicators of a real fix (autonomous,
// differential, precise, RTK, float RTK) and its absence (NMEA 2.0).
func goodMode(m string) bool {
	switch m {
	case "", "A", "D", "P", "R", "F":
		return true
	}
	return false
}

// goodQuality accepts GGA qualities 1-5; 0, empty, estimated (6), manual
// (7) and simulator (8) are not a fix.
func goodQuality(q string) bool {
	return len(q) == 1 && q[0] >= '1' && q[0] <= '5'
}
