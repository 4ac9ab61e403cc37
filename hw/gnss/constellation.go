package gnss

import "strings"

// Constellation names, as used in SkyView, metric labels and /health.
const (
	GPS     = "gps"
	GLONASS = "glonass"
	Galileo = "galileo"
	BeiDou  = "beidou"
	QZSS    = "qzss"
	NavIC   = "navic"
	SBAS    = "sbas"
	// OtherConstellation is a satellite no rule below places.
	OtherConstellation = "other"
)

// Constellations lists every constellation name in display order, so a
// metric can export all of them (0 when none is seen) and alerts on a sum
// never meet a missing series.
func Constellations() []string {
	return []string{GPS, GLONASS, Galileo, BeiDou, QZSS, NavIC, SBAS, OtherConstellation}
}

// talkerConstellation is the constellation a talker speaks for, or ""
// for the talkers that mix them (GN, and the odd ones receivers invent),
// whose satellites are placed by their number.
func talkerConstellation(talker string) string {
	switch talker {
	case "GP":
		return GPS
	case "GL":
		return GLONASS
	case "GA":
		return Galileo
	case "GB", "BD":
		return BeiDou
	case "GQ", "QZ":
		return QZSS
	case "GI":
		return NavIC
	}
	return ""
}

// systemConstellation maps the NMEA 4.10 GNSS system ID of GSA (and of
// GSV's successor fields) to a constellation.
func systemConstellation(id int64) string {
	switch id {
	case 1:
		return GPS
	case 2:
		return GLONASS
	case 3:
		return Galileo
	case 4:
		return BeiDou
	case 5:
		return QZSS
	case 6:
		return NavIC
	}
	return ""
}

// prnConstellation places a satellite number in a sentence of a mixed
// talker, by the ranges NMEA 0183 and the receivers in testdata/nmea use:
// 1-32 GPS, 33-64 and 120-158 SBAS, 65-96 GLONASS, 159-163 and 201-263 and
// 401-437 BeiDou (u-blox, MediaTek), 193-200 QZSS, 301-336 Galileo
// (u-blox). The ranges overlap between vendors; this is best effort, and
// a number no range claims is "other".
func prnConstellation(prn int) string {
	switch {
	case prn >= 1 && prn <= 32:
		return GPS
	case prn >= 33 && prn <= 64, prn >= 120 && prn <= 158:
		return SBAS
	case prn >= 65 && prn <= 96:
		return GLONASS
	case prn >= 159 && prn <= 163, prn >= 201 && prn <= 263, prn >= 401 && prn <= 437:
		return BeiDou
	case prn >= 193 && prn <= 200:
		return QZSS
	case prn >= 301 && prn <= 336:
		return Galileo
	}
	return OtherConstellation
}

// satConstellation places satellite prn reported by talker. A GPS talker
// also carries SBAS, QZSS and (older receivers) GLONASS numbers, so only
// its 1-32 are GPS for certain.
func satConstellation(talker string, prn int) string {
	c := talkerConstellation(talker)
	switch {
	case c == "":
		return prnConstellation(prn)
	case c == GPS && (prn < 1 || prn > 32):
		if p := prnConstellation(prn); p != OtherConstellation {
			return p
		}
	}
	return c
}

// Antenna is the antenna supervisor's verdict, when the receiver reports it.
type Antenna string

// Antenna states. AntennaUnknown: the receiver never said.
const (
	AntennaUnknown Antenna = ""
	AntennaOK      Antenna = "ok"
	AntennaOpen    Antenna = "open"  // no antenna, or the cable is cut
	AntennaShort   Antenna = "short" // short circuit on the antenna feed
)

// AntennaStates lists the states a metric exports, "unknown" for
// AntennaUnknown.
func AntennaStates() []string { return []string{"ok", "open", "short", "unknown"} }

// String names the state; AntennaUnknown is "unknown".
func (a Antenna) String() string {
	if a == AntennaUnknown {
		return "unknown"
	}
	return string(a)
}

// ParseAntennaStatus reads the antenna supervisor's report from the text
// of a TXT sentence: u-blox and the MediaTek/Quectel modules that copy it
// send "ANTSTATUS=OK", "=OPEN" or "=SHORT" (other values, such as INIT or
// DONTKNOW, say nothing yet); some modules write "ANTENNA OK", "ANTENNA
// OPEN", "ANTENNA SHORT". ok is false when msg is none of these.
func ParseAntennaStatus(msg string) (a Antenna, ok bool) {
	s := strings.ToUpper(strings.TrimSpace(msg))
	var v string
	switch {
	case strings.HasPrefix(s, "ANTSTATUS="):
		v = strings.TrimPrefix(s, "ANTSTATUS=")
	case strings.HasPrefix(s, "ANTENNA "):
		v = strings.TrimPrefix(s, "ANTENNA ")
	default:
		return AntennaUnknown, false
	}
	switch strings.TrimSpace(v) {
	case "OK":
		return AntennaOK, true
	case "OPEN":
		return AntennaOpen, true
	case "SHORT":
		return AntennaShort, true
	}
	return AntennaUnknown, false
}
