package gnss

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/adrianmo/go-nmea"
)

// DefaultSkyStaleAfter is how long what a sentence said stays in the
// receiver's view. Receivers send GGA and GSA every second but some send
// GSV only every five (SiRF, the Jackson Labs GPSDO in testdata/nmea).
const DefaultSkyStaleAfter = 10 * time.Second

const (
	// maxGSVParts bounds a GSV group: nine parts of four satellites is the
	// NMEA limit, multi-band receivers send a few more.
	maxGSVParts = 20
	// maxGSVSpan is how far apart the parts of one group may arrive: they
	// are one burst, so parts further apart belong to different groups.
	maxGSVSpan = time.Second
	// maxSkyKeys bounds the groups and GGA talkers kept, against a stream
	// that invents talkers and signal IDs.
	maxSkyKeys = 32
)

// FixType is the fix a receiver reports in GSA.
type FixType int

// Fix types; FixUnknown when no fresh GSA says.
const (
	FixUnknown FixType = 0
	FixNone    FixType = 1
	Fix2D      FixType = 2
	Fix3D      FixType = 3
)

// String names the fix type as /health and the CLI show it.
func (f FixType) String() string {
	switch f {
	case FixNone:
		return "none"
	case Fix2D:
		return "2d"
	case Fix3D:
		return "3d"
	}
	return "unknown"
}

// SkyCounts counts what the model refused. A sentence go-nmea could not
// decode never gets here: the Receiver counts it in Stats.Unparsable.
type SkyCounts struct {
	GSVGroups uint64 // GSV groups assembled whole
	// GSVBroken counts groups abandoned because a part was missing, came
	// out of order or disagreed with the others on the number of parts.
	GSVBroken uint64
	// Malformed counts decoded sentences whose values are impossible
	// (part 5 of 3, elevation 120°, CN0 150 dB-Hz, a satellite number that
	// is not a number), by type: "GSV", "GSA", "GGA".
	Malformed map[string]uint64
}

// Sky is a model of what the receiver says about its satellites, its fix
// and its antenna, fed by GSV, GSA, GGA and TXT sentences. It is pure: the
// arrival time of each sentence is passed in, and a SkyView is taken at a
// given time, leaving out what is older than StaleAfter. The zero value is
// ready to use. A Sky is not safe for concurrent use.
type Sky struct {
	// StaleAfter is how long a sentence's contribution lasts;
	// DefaultSkyStaleAfter if zero.
	StaleAfter time.Duration

	pending map[gsvKey]*gsvGroup // groups being assembled
	groups  map[gsvKey]*gsvGroup // last whole group per talker and signal
	used    map[string]usedSet   // satellites used, per constellation (GSA)
	gsa     gsaInfo
	gga     map[string]ggaInfo // per talker: some send GPGGA and GAGGA
	antenna Antenna
	antAt   time.Time
	counts  SkyCounts
}

// gsvKey names a GSV group: multi-band receivers send one group per
// constellation and signal (NMEA 4.11 signal ID).
type gsvKey struct {
	talker string
	signal int64
}

type gsvGroup struct {
	total, next int64
	sats        []gsvSat
	first, at   time.Time
}

type gsvSat struct {
	constellation      string
	prn                int
	elev, azimuth, cn0 int
	hasPosition        bool // elevation and azimuth were reported
}

type usedSet struct {
	prns []int
	at   time.Time
}

type gsaInfo struct {
	fix              FixType
	pdop, hdop, vdop float64
	at               time.Time
}

type ggaInfo struct {
	quality, sats int
	hdop, alt     float64
	hasAlt        bool
	at            time.Time
}

func (k *Sky) staleAfter() time.Duration {
	if k.StaleAfter > 0 {
		return k.StaleAfter
	}
	return DefaultSkyStaleAfter
}

// fresh reports whether something said at at still stands at now. A time
// far in the future (the clock stepped back) is stale as well.
func (k *Sky) fresh(at, now time.Time) bool {
	age := now.Sub(at)
	return !at.IsZero() && age <= k.staleAfter() && age >= -k.staleAfter()
}

// Counts returns the refusal counters (the map is a copy).
func (k *Sky) Counts() SkyCounts {
	c := k.counts
	c.Malformed = make(map[string]uint64, len(k.counts.Malformed))
	for t, n := range k.counts.Malformed {
		c.Malformed[t] = n
	}
	return c
}

func (k *Sky) malformed(typ string) {
	if k.counts.Malformed == nil {
		k.counts.Malformed = map[string]uint64{}
	}
	k.counts.Malformed[typ]++
}

// Add records sentence s, whose first byte arrived at at. Sentences other
// than GSV, GSA, GGA and TXT are ignored.
func (k *Sky) Add(s nmea.Sentence, at time.Time) {
	switch v := s.(type) {
	case nmea.GSV:
		k.addGSV(v, at)
	case nmea.GSA:
		k.addGSA(v, at)
	case nmea.GGA:
		k.addGGA(v, at)
	case nmea.TXT:
		if a, ok := ParseAntennaStatus(v.Message); ok {
			k.antenna, k.antAt = a, at
		}
	}
}

func (k *Sky) addGSV(v nmea.GSV, at time.Time) {
	key := gsvKey{talker: v.TalkerID(), signal: v.SystemID}
	if k.pending == nil {
		k.pending, k.groups = map[gsvKey]*gsvGroup{}, map[gsvKey]*gsvGroup{}
	}
	p := k.pending[key]
	delete(k.pending, key)
	sats, ok := gsvSats(v)
	if !ok || v.TotalMessages < 1 || v.TotalMessages > maxGSVParts || v.MessageNumber < 1 ||
		v.MessageNumber > v.TotalMessages || v.NumberSVsInView < 0 {
		k.malformed("GSV")
		if p != nil {
			k.counts.GSVBroken++
		}
		return
	}
	switch {
	case v.MessageNumber == 1:
		if p != nil {
			k.counts.GSVBroken++ // a new group began before the last ended
		}
		p = &gsvGroup{total: v.TotalMessages, next: 1, first: at}
	case p == nil || p.next != v.MessageNumber || p.total != v.TotalMessages || at.Sub(p.first) > maxGSVSpan:
		// A part without its predecessors: the group cannot be whole.
		k.counts.GSVBroken++
		return
	}
	p.sats = append(p.sats, sats...)
	p.next++
	p.at = at
	if p.next <= p.total {
		k.pending[key] = p
		return
	}
	k.counts.GSVGroups++
	k.groups[key] = p
	if len(k.groups) > maxSkyKeys {
		pruneOldest(k.groups, func(g *gsvGroup) time.Time { return g.at })
	}
	if len(k.pending) > maxSkyKeys {
		pruneOldest(k.pending, func(g *gsvGroup) time.Time { return g.at })
	}
}

// gsvSats checks and converts a GSV's satellites. Entries with satellite
// number 0 are the padding some receivers fill the last part with.
func gsvSats(v nmea.GSV) ([]gsvSat, bool) {
	out := make([]gsvSat, 0, len(v.Info))
	for i, in := range v.Info {
		if in.SVPRNNumber == 0 {
			continue
		}
		if in.SVPRNNumber < 0 || in.SVPRNNumber > 999 || in.Elevation < -90 || in.Elevation > 90 ||
			in.Azimuth < 0 || in.Azimuth > 359 || in.SNR < 0 || in.SNR > 99 {
			return nil, false
		}
		// go-nmea reads an empty field as 0: tell "not reported" apart.
		f := v.Fields[3+4*i:]
		out = append(out, gsvSat{
			constellation: satConstellation(v.TalkerID(), int(in.SVPRNNumber)),
			prn:           int(in.SVPRNNumber),
			elev:          int(in.Elevation), azimuth: int(in.Azimuth), cn0: int(in.SNR),
			hasPosition: len(f) > 2 && f[1] != "" && f[2] != "",
		})
	}
	return out, true
}

func (k *Sky) addGSA(v nmea.GSA, at time.Time) {
	prns := make([]int, 0, len(v.SV))
	for _, sv := range v.SV {
		n, err := strconv.Atoi(sv)
		if err != nil || n <= 0 || n > 999 {
			k.malformed("GSA")
			return
		}
		prns = append(prns, n)
	}
	if v.PDOP < 0 || v.HDOP < 0 || v.VDOP < 0 {
		k.malformed("GSA")
		return
	}
	fix, _ := strconv.Atoi(v.FixType)
	// Every GSA replaces the DOPs, so a lost fix's empty fields do not
	// leave the last fix's figures standing; 0 reads as unknown (the
	// Jackson Labs GPSDO sends 0.00 throughout).
	k.gsa = gsaInfo{fix: FixType(fix), pdop: v.PDOP, hdop: v.HDOP, vdop: v.VDOP, at: at}
	if k.used == nil {
		k.used = map[string]usedSet{}
	}
	// Which constellations this sentence speaks for: the NMEA 4.10 system
	// ID, else the talker, else (GN) each satellite's number.
	whole := systemConstellation(v.SystemID)
	talker := v.TalkerID()
	if whole == "" && talker != "GP" {
		whole = talkerConstellation(talker)
	}
	if whole != "" {
		k.used[whole] = usedSet{prns: prns, at: at}
		return
	}
	if len(prns) == 0 {
		if FixType(fix) == FixNone {
			// "No fix, no satellites" from a mixed talker: nothing is used.
			for c := range k.used {
				k.used[c] = usedSet{at: at}
			}
		}
		return
	}
	by := map[string][]int{}
	if talker == "GP" {
		by[GPS] = nil // a GPGSA describes GPS even when it lists none
	}
	for _, n := range prns {
		c := satConstellation(talker, n)
		by[c] = append(by[c], n)
	}
	for c, list := range by {
		k.used[c] = usedSet{prns: list, at: at}
	}
}

func (k *Sky) addGGA(v nmea.GGA, at time.Time) {
	q, err := strconv.Atoi(v.FixQuality)
	if v.FixQuality == "" {
		q, err = 0, nil
	}
	if err != nil || v.NumSatellites < 0 || v.HDOP < 0 {
		k.malformed("GGA")
		return
	}
	if k.gga == nil {
		k.gga = map[string]ggaInfo{}
	}
	// Altitude is only meant with a fix; go-nmea reads "" as 0.
	hasAlt := q > 0 && len(v.Fields) > 8 && v.Fields[8] != ""
	k.gga[v.TalkerID()] = ggaInfo{quality: q, sats: int(v.NumSatellites), hdop: v.HDOP, alt: v.Altitude, hasAlt: hasAlt, at: at}
	if len(k.gga) > maxSkyKeys {
		pruneOldest(k.gga, func(g ggaInfo) time.Time { return g.at })
	}
}

// pruneOldest deletes the oldest entry of m.
func pruneOldest[K comparable, V any](m map[K]V, at func(V) time.Time) {
	var oldest K
	var t time.Time
	first := true
	for key, v := range m {
		if first || at(v).Before(t) {
			oldest, t, first = key, at(v), false
		}
	}
	delete(m, oldest)
}

// ggaPreferred is the GGA to report: a receiver that sends one per
// constellation (GPGGA and GAGGA, Telit) counts all its satellites in the
// combined or the GPS one, so GN, then GP, then the latest other.
func (k *Sky) ggaPreferred(now time.Time) (ggaInfo, bool) {
	for _, t := range []string{"GN", "GP"} {
		if g, ok := k.gga[t]; ok && k.fresh(g.at, now) {
			return g, true
		}
	}
	var best ggaInfo
	found := false
	for _, g := range k.gga {
		if k.fresh(g.at, now) && (!found || g.at.After(best.at)) {
			best, found = g, true
		}
	}
	return best, found
}

// sortConstellations orders names as Constellations lists them.
func sortConstellations[T any](s []T, name func(T) string) {
	order := map[string]int{}
	for i, c := range Constellations() {
		order[c] = i
	}
	slices.SortStableFunc(s, func(a, b T) int { return cmp.Compare(order[name(a)], order[name(b)]) })
}
