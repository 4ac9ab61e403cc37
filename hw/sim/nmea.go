package sim

import (
	"fmt"
	"strings"
	"time"
)

// Position is where the simulated antenna is.
type Position struct {
	Lat, Lon, Alt float64 // degrees, degrees, metres
}

// skySat is a satellite of the simulated sky, fixed in place: the view a
// receiver reports, not orbits.
type skySat struct {
	talker             string // GP or GA: which GSV group lists it
	system             int    // NMEA 4.10 system ID for GSA
	prn, elev, azimuth int
}

// sky is what the simulated receiver sees: eight GPS and five Galileo
// satellites, the low ones (under 15°) tracked but not used.
var sky = []skySat{
	{"GP", 1, 2, 67, 45}, {"GP", 1, 5, 41, 130}, {"GP", 1, 12, 23, 210}, {"GP", 1, 15, 55, 300},
	{"GP", 1, 18, 8, 20}, {"GP", 1, 24, 33, 95}, {"GP", 1, 25, 12, 250}, {"GP", 1, 29, 71, 175},
	{"GA", 3, 4, 48, 60}, {"GA", 3, 9, 27, 160}, {"GA", 3, 11, 62, 280}, {"GA", 3, 19, 10, 340},
	{"GA", 3, 36, 36, 15},
}

// minUsedElevation is the mask under which a satellite is not used.
const minUsedElevation = 15

// Faults are what an attacker or a faulty receiver changes in an epoch.
type Faults struct {
	// UniformCN0 gives every tracked satellite the same strong signal, a
	// simulator's signature (real skies spread with elevation).
	UniformCN0 bool
	// WeekRollover dates the epoch 1024 weeks early, as a receiver whose
	// 10-bit GPS week counter wrapped.
	WeekRollover bool
}

// uniformCN0 is the spoofer's level: strong, the same on every channel.
const uniformCN0 = 47

// gpsWeekRollover is the period of the 10-bit GPS week number.
const gpsWeekRollover = 1024 * 7 * 24 * time.Hour

// Epoch writes the NMEA 0183 sentences a receiver sends for UTC second t:
// RMC, GGA and ZDA with GP talker, then GNGSA per constellation and GPGSV
// and GAGSV groups (NMEA 4.10), with correct checksums and CRLF endings.
// valid=false produces a receiver without a fix (RMC status V, GGA quality
// 0, GSA fix 1 with no satellites, GSV with no CN0: nothing tracked).
func Epoch(t time.Time, p Position, valid bool) []byte {
	return EpochWith(t, p, valid, Faults{})
}

// EpochWith is Epoch with faults injected.
func EpochWith(t time.Time, p Position, valid bool, f Faults) []byte {
	t = t.UTC()
	if f.WeekRollover {
		t = t.Add(-gpsWeekRollover) // a whole number of days: the time of day stays
	}
	hms := fmt.Sprintf("%02d%02d%02d.00", t.Hour(), t.Minute(), t.Second())
	lat, ns := ddmm(p.Lat, 2), "N"
	if p.Lat < 0 {
		ns = "S"
	}
	lon, ew := ddmm(p.Lon, 3), "E"
	if p.Lon < 0 {
		ew = "W"
	}
	used := 0
	for _, s := range sky {
		if s.elev >= minUsedElevation {
			used++
		}
	}
	status, mode, quality, sats := "A", "A", 1, used
	if !valid {
		status, mode, quality, sats = "V", "N", 0, 0
	}
	date := fmt.Sprintf("%02d%02d%02d", t.Day(), int(t.Month()), t.Year()%100)
	var b []byte
	b = sentence(b, fmt.Sprintf("GPRMC,%s,%s,%s,%s,%s,%s,0.0,0.0,%s,,,%s", hms, status, lat, ns, lon, ew, date, mode))
	b = sentence(b, fmt.Sprintf("GPGGA,%s,%s,%s,%s,%s,%d,%02d,0.9,%.1f,M,36.0,M,,", hms, lat, ns, lon, ew, quality, sats, p.Alt))
	b = sentence(b, fmt.Sprintf("GPZDA,%s,%02d,%02d,%04d,00,00", hms, t.Day(), int(t.Month()), t.Year()))
	b = appendGSA(b, valid)
	b = appendGSV(b, "GP", t, valid, f.UniformCN0)
	b = appendGSV(b, "GA", t, valid, f.UniformCN0)
	return b
}

// appendGSA appends one GNGSA per constellation: the satellites above the
// mask, or a fix of 1 and none without a fix.
func appendGSA(b []byte, valid bool) []byte {
	for _, system := range []int{1, 3} {
		var prns []string
		for _, s := range sky {
			if valid && s.system == system && s.elev >= minUsedElevation {
				prns = append(prns, fmt.Sprintf("%02d", s.prn))
			}
		}
		for len(prns) < 12 {
			prns = append(prns, "")
		}
		fix, dop := "3", "1.6,0.9,1.3"
		if !valid {
			fix, dop = "1", ",,"
		}
		b = sentence(b, fmt.Sprintf("GNGSA,A,%s,%s,%s,%d", fix, strings.Join(prns, ","), dop, system))
	}
	return b
}

// appendGSV appends talker's GSV group, four satellites a part, signal
// ID 1 (L1 C/A, E1). CN0 follows elevation and wobbles by a dB-Hz or two
// from second to second, as real ones do; uniform gives them all the
// same strong level.
func appendGSV(b []byte, talker string, t time.Time, valid, uniform bool) []byte {
	var sats []skySat
	for _, s := range sky {
		if s.talker == talker {
			sats = append(sats, s)
		}
	}
	parts := (len(sats) + 3) / 4
	for i := range parts {
		body := fmt.Sprintf("%sGSV,%d,%d,%02d", talker, parts, i+1, len(sats))
		for _, s := range sats[4*i : min(4*i+4, len(sats))] {
			cn0 := ""
			switch {
			case valid && uniform:
				cn0 = fmt.Sprintf("%02d", uniformCN0)
			case valid:
				cn0 = fmt.Sprintf("%02d", 28+s.elev/4+(t.Second()+s.prn)%3)
			}
			body += fmt.Sprintf(",%02d,%02d,%03d,%s", s.prn, s.elev, s.azimuth, cn0)
		}
		b = sentence(b, body+",1")
	}
	return b
}

// Antenna writes the antenna supervisor's report as a u-blox receiver
// sends it at start and on every change: ok true for "ANTSTATUS=OK",
// false for "ANTSTATUS=OPEN".
func Antenna(ok bool) []byte {
	if ok {
		return sentence(nil, "GPTXT,01,01,02,ANTSTATUS=OK")
	}
	return sentence(nil, "GPTXT,01,01,02,ANTSTATUS=OPEN")
}

// sentence appends $body*HH\r\n.
func sentence(b []byte, body string) []byte {
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	return fmt.Appendf(b, "$%s*%02X\r\n", body, sum)
}

// ddmm formats degrees as NMEA (d)ddmm.mmmm with degWidth degree digits.
func ddmm(deg float64, degWidth int) string {
	if deg < 0 {
		deg = -deg
	}
	d := int(deg)
	m := (deg - float64(d)) * 60
	return fmt.Sprintf("%0*d%07.4f", degWidth, d, m)
}
