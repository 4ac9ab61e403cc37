package gnss

import (
	"testing"
	"time"
)

// feedSky parses each body (checksum added) and adds it to k, the i-th
// arriving at t0 plus i times step.
func feedSky(t *testing.T, k *Sky, t0 time.Time, step time.Duration, bodies ...string) {
	t.Helper()
	p := NewParser()
	for i, b := range bodies {
		raw := AppendSentence(nil, b)
		s, err := p.Parse(raw[:len(raw)-2])
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		k.Add(s, t0.Add(time.Duration(i)*step))
	}
}

var skyT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// A GPS group of three parts: 9 satellites, 7 tracked.
var gsvGroup3 = []string{
	"GPGSV,3,1,09,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45",
	"GPGSV,3,2,09,15,60,120,30,17,05,210,,18,55,050,44,20,10,180,",
	"GPGSV,3,3,09,24,33,270,38",
}

func TestSkyGSVAssembly(t *testing.T) {
	tests := []struct {
		name              string
		bodies            []string
		step              time.Duration
		inView, tracked   int
		groups, broken    uint64
		malformed         uint64
		wantMax, wantMean float64
	}{
		{name: "whole group", bodies: gsvGroup3, step: 10 * time.Millisecond,
			inView: 9, tracked: 7, groups: 1, wantMax: 46, wantMean: 283.0 / 7},
		{name: "part 2 missing", bodies: []string{gsvGroup3[0], gsvGroup3[2]}, step: 10 * time.Millisecond,
			broken: 1},
		{name: "parts out of order", bodies: []string{gsvGroup3[1], gsvGroup3[0], gsvGroup3[2]}, step: 10 * time.Millisecond,
			broken: 2}, // part 2 alone, then 1 followed by 3
		{name: "new group before the last ended", bodies: append([]string{gsvGroup3[0], gsvGroup3[1]}, gsvGroup3...), step: 10 * time.Millisecond,
			inView: 9, tracked: 7, groups: 1, broken: 1, wantMax: 46, wantMean: 283.0 / 7},
		{name: "parts disagree on the total", bodies: []string{gsvGroup3[0], "GPGSV,2,2,09,15,60,120,30"}, step: 10 * time.Millisecond,
			broken: 1},
		{name: "parts seconds apart are two groups", bodies: gsvGroup3, step: 700 * time.Millisecond,
			broken: 1},
		{name: "part 4 of 3", bodies: []string{"GPGSV,3,4,09,24,33,270,38"}, malformed: 1},
		{name: "elevation 95", bodies: []string{"GPGSV,1,1,01,24,95,270,38"}, malformed: 1},
		{name: "CN0 120", bodies: []string{"GPGSV,1,1,01,24,45,270,120"}, malformed: 1},
		{name: "malformed part breaks its group", bodies: []string{gsvGroup3[0], "GPGSV,3,2,09,15,60,420,30", gsvGroup3[2]},
			step: 10 * time.Millisecond, broken: 2, malformed: 1},
		{name: "padding and no satellites", bodies: []string{"GPGSV,1,1,00,,,,,,,,,,,,,,,,"}, groups: 1},
		{name: "one satellite, no position", bodies: []string{"GPGSV,1,1,01,14,,,30"}, inView: 1, tracked: 1, groups: 1,
			wantMax: 30, wantMean: 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var k Sky
			feedSky(t, &k, skyT0, tc.step, tc.bodies...)
			v := k.View(skyT0.Add(2 * time.Second))
			g := v.Constellation(GPS)
			if g.InView != tc.inView || g.Tracked != tc.tracked || g.CN0Max != tc.wantMax || g.CN0Mean != tc.wantMean {
				t.Errorf("GPS %+v, want in view %d tracked %d CN0 max %v mean %v", g, tc.inView, tc.tracked, tc.wantMax, tc.wantMean)
			}
			c := v.Counts
			if c.GSVGroups != tc.groups || c.GSVBroken != tc.broken || c.Malformed["GSV"] != tc.malformed {
				t.Errorf("counts %+v, want groups %d broken %d malformed %d", c, tc.groups, tc.broken, tc.malformed)
			}
		})
	}
}

// TestSkyBrokenGroupKeepsTheLastWhole: a group that does not complete
// leaves the previous whole one in the view, until it goes stale.
func TestSkyBrokenGroupKeepsTheLastWhole(t *testing.T) {
	var k Sky
	feedSky(t, &k, skyT0, 10*time.Millisecond, gsvGroup3...)
	feedSky(t, &k, skyT0.Add(time.Second), 10*time.Millisecond, "GPGSV,3,1,09,01,40,083,20", gsvGroup3[2])
	if g := k.View(skyT0.Add(2 * time.Second)).Constellation(GPS); g.InView != 9 || g.CN0Max != 46 {
		t.Errorf("GPS %+v after a broken group, want the last whole one (9 in view, max 46)", g)
	}
}

// TestSkyStale: what GSV, GSA and GGA said leaves the view StaleAfter
// after it came (read from the injected time, not a clock); the antenna
// report, sent only on change, stays.
func TestSkyStale(t *testing.T) {
	k := Sky{StaleAfter: 5 * time.Second}
	feedSky(t, &k, skyT0, time.Millisecond, append(gsvGroup3,
		"GPGSA,A,3,01,02,12,14,,,,,,,,,1.9,1.0,1.6",
		"GPGGA,120000.00,4807.038,N,01131.000,E,1,04,1.0,545.4,M,46.9,M,,",
		"GPTXT,01,01,01,ANTSTATUS=OPEN")...)
	last := skyT0.Add(5 * time.Millisecond)
	tests := []struct {
		name  string
		at    time.Time
		fresh bool
	}{
		{"just after", last, true},
		{"the first at StaleAfter", skyT0.Add(5 * time.Second), true},
		{"the last past StaleAfter", last.Add(5*time.Second + time.Nanosecond), false},
		{"clock stepped far back", skyT0.Add(-time.Minute), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := k.View(tc.at)
			g := v.Constellation(GPS)
			if tc.fresh {
				if g.InView != 9 || g.Used != 4 || v.FixType != Fix3D || v.SatellitesUsed != 4 || v.PDOP != 1.9 || !v.HasAltitude || !v.Updated.Equal(skyT0.Add(4*time.Millisecond)) {
					t.Errorf("view %+v, want the sentences' figures", v)
				}
			} else if len(v.Constellations) != 0 || len(v.Satellites) != 0 || v.FixType != FixUnknown ||
				v.FixQuality != -1 || v.SatellitesUsed != -1 || v.HDOP != 0 || v.HasAltitude || !v.Updated.IsZero() {
				t.Errorf("view %+v, want everything stale", v)
			}
			if v.Antenna != AntennaOpen || !v.AntennaAt.Equal(last) {
				t.Errorf("antenna %q at %v, want open at %v", v.Antenna, v.AntennaAt, last)
			}
		})
	}
}

// TestSkyUsedSatellites: which constellation a GSA speaks for, by system
// ID, talker or satellite number, and what an empty one clears.
func TestSkyUsedSatellites(t *testing.T) {
	tests := []struct {
		name   string
		bodies []string
		want   map[string]int
		fix    FixType
	}{
		{"system IDs", []string{
			"GNGSA,A,3,02,08,10,,,,,,,,,,1.6,1.3,0.9,1",
			"GNGSA,A,3,65,66,,,,,,,,,,,1.6,1.3,0.9,2",
			"GNGSA,A,3,33,,,,,,,,,,,,1.6,1.3,0.9,3",
		}, map[string]int{GPS: 3, GLONASS: 2, Galileo: 1}, Fix3D},
		{"mixed talker placed by number", []string{
			"GNGSA,A,3,11,12,06,46,,,,,,,,,1.1,0.6,0.9",
			"GNGSA,A,3,87,78,88,,,,,,,,,,1.1,0.6,0.9",
		}, map[string]int{GPS: 3, SBAS: 1, GLONASS: 3}, Fix3D},
		{"later GSA replaces its constellation only", []string{
			"GNGSA,A,3,02,08,10,,,,,,,,,,1.6,1.3,0.9,1",
			"GNGSA,A,3,65,66,,,,,,,,,,,1.6,1.3,0.9,2",
			"GNGSA,A,3,02,,,,,,,,,,,,1.6,1.3,0.9,1",
		}, map[string]int{GPS: 1, GLONASS: 2}, Fix3D},
		{"talker's empty GSA clears its constellation", []string{
			"GPGSA,A,3,01,07,11,,,,,,,,,,1.8,0.9,1.5",
			"GLGSA,A,3,65,73,,,,,,,,,,,1.8,0.9,1.5",
			"GLGSA,A,3,,,,,,,,,,,,,1.8,0.9,1.5",
		}, map[string]int{GPS: 3}, Fix3D},
		{"empty mixed GSA with a fix says nothing", []string{
			"GNGSA,A,3,11,12,06,,,,,,,,,,1.1,0.6,0.9",
			"GNGSA,A,3,,,,,,,,,,,,,1.1,0.6,0.9",
		}, map[string]int{GPS: 3}, Fix3D},
		{"empty mixed GSA without a fix clears all", []string{
			"GNGSA,A,3,02,08,10,,,,,,,,,,1.6,1.3,0.9,1",
			"GNGSA,A,3,65,66,,,,,,,,,,,1.6,1.3,0.9,2",
			"GNGSA,A,1,,,,,,,,,,,,,,,",
		}, map[string]int{}, FixNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var k Sky
			feedSky(t, &k, skyT0, time.Millisecond, tc.bodies...)
			v := k.View(skyT0.Add(time.Second))
			got := map[string]int{}
			for _, c := range v.Constellations {
				got[c.Name] = c.Used
			}
			if len(got) != len(tc.want) || v.FixType != tc.fix {
				t.Errorf("used %v fix %v, want %v %v", got, v.FixType, tc.want, tc.fix)
			}
			for c, n := range tc.want {
				if got[c] != n {
					t.Errorf("%s used %d, want %d", c, got[c], n)
				}
			}
		})
	}
}

// TestSkyUsedFlags: a satellite in view is flagged used when a GSA of its
// constellation lists its number.
func TestSkyUsedFlags(t *testing.T) {
	var k Sky
	feedSky(t, &k, skyT0, time.Millisecond, append(gsvGroup3, "GPGSA,A,3,01,14,24,,,,,,,,,,1.9,1.0,1.6")...)
	var used []int
	for _, s := range k.View(skyT0.Add(time.Second)).Satellites {
		if s.Used {
			used = append(used, s.PRN)
		}
	}
	if len(used) != 3 || used[0] != 1 || used[1] != 14 || used[2] != 24 {
		t.Errorf("used %v, want [1 14 24]", used)
	}
}

// TestSkyGGA: the combined or GPS GGA is reported over a per-constellation
// one; a quality the model cannot read is counted, not fatal.
func TestSkyGGA(t *testing.T) {
	tests := []struct {
		name    string
		bodies  []string
		quality int
		used    int
		hasAlt  bool
		bad     uint64
	}{
		{"GP over GA", []string{
			"GPGGA,043548.00,4333.190127,N,00127.618382,E,1,05,1.3,250.7,M,50.0,M,,",
			"GAGGA,043548.00,4333.190127,N,00127.618382,E,1,01,1.3,250.7,M,50.0,M,,",
		}, 1, 5, true, 0},
		{"GN over GP", []string{
			"GNGGA,043548.00,4333.190127,N,00127.618382,E,2,12,1.3,250.7,M,50.0,M,,",
			"GPGGA,043548.00,4333.190127,N,00127.618382,E,1,05,1.3,250.7,M,50.0,M,,",
		}, 2, 12, true, 0},
		{"no fix, no altitude", []string{"GPGGA,,,,,,0,,,,,,,,"}, 0, 0, false, 0},
		{"only another talker", []string{"GAGGA,043548.00,4333.190127,N,00127.618382,E,1,01,1.3,250.7,M,50.0,M,,"}, 1, 1, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var k Sky
			feedSky(t, &k, skyT0, time.Millisecond, tc.bodies...)
			v := k.View(skyT0.Add(time.Second))
			if v.FixQuality != tc.quality || v.SatellitesUsed != tc.used || v.HasAltitude != tc.hasAlt || v.Counts.Malformed["GGA"] != tc.bad {
				t.Errorf("quality %d used %d alt %v malformed %v, want %d %d %v %d", v.FixQuality, v.SatellitesUsed, v.HasAltitude, v.Counts.Malformed, tc.quality, tc.used, tc.hasAlt, tc.bad)
			}
		})
	}
}

func TestParseAntennaStatus(t *testing.T) {
	tests := []struct {
		msg  string
		want Antenna
		ok   bool
	}{
		{"ANTSTATUS=OK", AntennaOK, true},
		{"ANTSTATUS=OPEN", AntennaOpen, true},
		{"ANTSTATUS=SHORT", AntennaShort, true},
		{"antstatus=short ", AntennaShort, true},
		{"ANTENNA OPEN", AntennaOpen, true},
		{"ANTENNA OK", AntennaOK, true},
		{"ANTSTATUS=INIT", AntennaUnknown, false},
		{"ANTSTATUS=DONTKNOW", AntennaUnknown, false},
		{"ANTSUPERV=AC SD PDoS SR", AntennaUnknown, false},
		{"u-blox ag - www.u-blox.com", AntennaUnknown, false},
		{"", AntennaUnknown, false},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			got, ok := ParseAntennaStatus(tc.msg)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ParseAntennaStatus(%q) = %q, %v, want %q, %v", tc.msg, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestSkyAntennaFromTXT: the last report wins; INIT says nothing.
func TestSkyAntennaFromTXT(t *testing.T) {
	var k Sky
	feedSky(t, &k, skyT0, time.Second, "GPTXT,01,01,02,ANTSTATUS=OK", "GPTXT,01,01,02,ANTSTATUS=SHORT", "GPTXT,01,01,02,ANTSTATUS=INIT")
	if v := k.View(skyT0.Add(time.Hour)); v.Antenna != AntennaShort || !v.AntennaAt.Equal(skyT0.Add(time.Second)) {
		t.Errorf("antenna %q at %v, want short at %v", v.Antenna, v.AntennaAt, skyT0.Add(time.Second))
	}
}

func TestSatConstellation(t *testing.T) {
	tests := []struct {
		talker string
		prn    int
		want   string
	}{
		{"GP", 5, GPS}, {"GP", 44, SBAS}, {"GP", 193, QZSS}, {"GP", 500, GPS},
		{"GL", 70, GLONASS}, {"GA", 33, Galileo}, {"GB", 7, BeiDou}, {"BD", 7, BeiDou},
		{"QZ", 1, QZSS}, {"GI", 3, NavIC},
		{"GN", 5, GPS}, {"GN", 70, GLONASS}, {"GN", 307, Galileo}, {"GN", 208, BeiDou}, {"GN", 999, OtherConstellation},
		{"IN", 12, GPS},
	}
	for _, tc := range tests {
		if got := satConstellation(tc.talker, tc.prn); got != tc.want {
			t.Errorf("satConstellation(%s, %d) = %s, want %s", tc.talker, tc.prn, got, tc.want)
		}
	}
}

// TestSkyFeed: a capture fed at one instant leaves its last epoch's view.
func TestSkyFeed(t *testing.T) {
	var k Sky
	stream := append(AppendSentence(nil, gsvGroup3[0]), "$GPGSV,3,2,09,bad*00\r\n"...)
	stream = AppendSentence(stream, "GPGSA,A,3,01,14,,,,,,,,,,,1.9,1.0,1.6")
	if n := k.Feed(append(stream, "$GPGGA,120000.00,4807.038,N"...), skyT0); n != 2 {
		t.Errorf("Feed added %d sentences, want 2 (bad checksum and a cut line left out)", n)
	}
	if v := k.View(skyT0); v.FixType != Fix3D || v.Constellation(GPS).Used != 2 {
		t.Errorf("view %+v", v)
	}
}
