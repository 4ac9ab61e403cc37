package gnss

import (
	"cmp"
	"slices"
	"time"
)

// SkyView is what the receiver said recently about its satellites, fix
// and antenna: a snapshot of a Sky at one time, leaving out what went
// stale. Numbers it does not know are -1 (counts) or 0 (DOP, CN0).
type SkyView struct {
	// Constellations lists, in the order of Constellations(), those with
	// a satellite in view or used.
	Constellations []ConstellationView
	// Satellites lists every satellite in view, by constellation and
	// number. A satellite several signals report is listed once, with its
	// strongest CN0.
	Satellites []SatelliteView
	// FixType is the last fresh GSA's fix (FixUnknown without one).
	FixType FixType
	// FixQuality is GGA's quality (0 none, 1 GPS, 2 DGPS, ...), -1 unknown.
	FixQuality int
	// SatellitesUsed is GGA's count of satellites in the fix, -1 unknown.
	SatellitesUsed int
	// PDOP, HDOP and VDOP from GSA (HDOP from GGA without one); 0 unknown.
	PDOP, HDOP, VDOP float64
	// Altitude above mean sea level in metres (GGA), when HasAltitude.
	Altitude    float64
	HasAltitude bool
	// Antenna is the last antenna report, which does not go stale: the
	// receiver reports a change, not a state every second. AntennaAt is
	// when it came.
	Antenna   Antenna
	AntennaAt time.Time
	// Updated is the arrival of the newest sentence in the view (zero if
	// nothing is fresh).
	Updated time.Time
	// Counts are the model's refusals since start.
	Counts SkyCounts
}

// ConstellationView sums one constellation's satellites.
type ConstellationView struct {
	Name string
	// InView: satellites the receiver lists (GSV); Tracked: those with a
	// CN0; Used: satellites in the fix (GSA).
	InView, Tracked, Used int
	// CN0Mean and CN0Max over the tracked satellites, dB-Hz; 0 if none.
	CN0Mean, CN0Max float64
}

// SatelliteView is one satellite in view.
type SatelliteView struct {
	Constellation string
	PRN           int
	// Elevation and Azimuth in degrees, when HasPosition.
	Elevation, Azimuth int
	HasPosition        bool
	// CN0 in dB-Hz, 0 when not tracked.
	CN0 int
	// Used: the satellite is in a fresh GSA's list. Receivers number
	// satellites differently in GSA and GSV (Telit's BeiDou), so a
	// constellation's Used count is from GSA and may exceed the flags.
	Used bool
}

// View returns the model as of now.
func (k *Sky) View(now time.Time) SkyView {
	v := SkyView{FixQuality: -1, SatellitesUsed: -1, Antenna: k.antenna, AntennaAt: k.antAt, Counts: k.Counts()}
	seen := func(at time.Time) {
		if at.After(v.Updated) {
			v.Updated = at
		}
	}
	type satKey struct {
		c   string
		prn int
	}
	sats := map[satKey]*SatelliteView{}
	for _, g := range k.groups {
		if !k.fresh(g.at, now) {
			continue
		}
		seen(g.at)
		for _, s := range g.sats {
			key := satKey{s.constellation, s.prn}
			cur := sats[key]
			if cur == nil {
				cur = &SatelliteView{Constellation: s.constellation, PRN: s.prn}
				sats[key] = cur
			}
			if s.hasPosition && !cur.HasPosition {
				cur.Elevation, cur.Azimuth, cur.HasPosition = s.elev, s.azimuth, true
			}
			cur.CN0 = max(cur.CN0, s.cn0)
		}
	}
	used := map[string]int{}
	for c, u := range k.used {
		if !k.fresh(u.at, now) {
			continue
		}
		seen(u.at)
		used[c] = len(u.prns)
		for _, prn := range u.prns {
			if s := sats[satKey{c, prn}]; s != nil {
				s.Used = true
			}
		}
	}
	per := map[string]*ConstellationView{}
	get := func(c string) *ConstellationView {
		if per[c] == nil {
			per[c] = &ConstellationView{Name: c}
		}
		return per[c]
	}
	for _, s := range sats {
		v.Satellites = append(v.Satellites, *s)
		cv := get(s.Constellation)
		cv.InView++
		if s.CN0 > 0 {
			cv.Tracked++
			cv.CN0Mean += float64(s.CN0)
			cv.CN0Max = max(cv.CN0Max, float64(s.CN0))
		}
	}
	for c, n := range used {
		if n > 0 {
			get(c).Used = n
		}
	}
	for _, cv := range per {
		if cv.Tracked > 0 {
			cv.CN0Mean /= float64(cv.Tracked)
		}
		v.Constellations = append(v.Constellations, *cv)
	}
	sortConstellations(v.Constellations, func(c ConstellationView) string { return c.Name })
	slices.SortFunc(v.Satellites, func(a, b SatelliteView) int { return cmp.Compare(a.PRN, b.PRN) })
	sortConstellations(v.Satellites, func(s SatelliteView) string { return s.Constellation })

	if k.fresh(k.gsa.at, now) {
		seen(k.gsa.at)
		v.FixType = k.gsa.fix
		v.PDOP, v.HDOP, v.VDOP = k.gsa.pdop, k.gsa.hdop, k.gsa.vdop
	}
	if g, ok := k.ggaPreferred(now); ok {
		seen(g.at)
		v.FixQuality, v.SatellitesUsed = g.quality, g.sats
		if v.HDOP == 0 {
			v.HDOP = g.hdop
		}
		v.Altitude, v.HasAltitude = g.alt, g.hasAlt
	}
	return v
}

// Constellation returns the view of constellation name (zero counts if
// nothing of it is in view).
func (v SkyView) Constellation(name string) ConstellationView {
	for _, c := range v.Constellations {
		if c.Name == name {
			return c
		}
	}
	return ConstellationView{Name: name}
}

// Feed frames a byte stream (a capture with its comments stripped),
// drops sentences whose checksum is bad or missing, and adds every one
// go-nmea decodes as if it arrived at at. It returns how many were added.
// For tools and tests that show the view a capture leaves behind.
func (k *Sky) Feed(stream []byte, at time.Time) int {
	var f Framer
	p := NewParser()
	n := 0
	add := func(raw []byte, _ time.Time) {
		if st, _ := VerifyChecksum(raw); st != ChecksumOK {
			return
		}
		if s, err := p.Parse(raw); err == nil {
			k.Add(s, at)
			n++
		}
	}
	f.Feed(stream, at, add)
	f.Feed([]byte("\n"), at, add) // end the last line
	return n
}
