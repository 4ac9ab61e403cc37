package gnss

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adrianmo/go-nmea"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
)

// skyReplay is a capture fed to a Sky.
type skyReplay struct {
	sky Sky
	// last is the arrival time of the last sentence.
	last time.Time
	// gsv counts the checksum-valid GSV sentences framed; gsvParsed those
	// go-nmea decoded; parts the parts of the groups completed.
	gsv, gsvParsed, parts int
}

// replaySky frames, checks and parses a capture and feeds every decoded
// sentence to a Sky, each arriving at the UTC time of day its epoch names
// (the last time-bearing sentence's) plus 1 ms per sentence since, so the
// model sees the receiver's own pacing.
func replaySky(t *testing.T, name string) *skyReplay {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(captureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &skyReplay{}
	p := NewParser()
	var f Framer
	base, n := day, 0
	f.Feed(StripComments(b), time.Time{}, func(raw []byte, _ time.Time) {
		if st, _ := VerifyChecksum(raw); st != ChecksumOK {
			return
		}
		if len(raw) > 6 && string(raw[3:6]) == "GSV" {
			r.gsv++
		}
		s, err := p.Parse(raw)
		if err != nil {
			return
		}
		if tod, ok := timeOf(s); ok {
			base = day.Add(time.Duration(tod.Hour)*time.Hour + time.Duration(tod.Minute)*time.Minute +
				time.Duration(tod.Second)*time.Second + time.Duration(tod.Millisecond)*time.Millisecond)
			n = 0
		}
		n++
		r.last = base.Add(time.Duration(n) * time.Millisecond)
		before := r.sky.counts.GSVGroups
		r.sky.Add(s, r.last)
		if v, ok := s.(nmea.GSV); ok {
			r.gsvParsed++
			if r.sky.counts.GSVGroups > before {
				r.parts += int(v.TotalMessages)
			}
		}
	})
	f.Feed([]byte("\n"), time.Time{}, func([]byte, time.Time) {})
	return r
}

// gsvBreaks are the captures whose GSV groups do not all come whole, and
// why; every other capture must assemble every GSV into a group.
var gsvBreaks = map[string]string{
	"gp-320fw-2019-04-06-overflow.log": "sends part 3 of 3 only every few seconds",
	"gp-320fw-2019-04-07-coldboot.log": "corrupted stream",
	"isync.log":                        "drops parts (packet collision)",
	"st-teseo-liv3f.log":               "starts and ends in the middle of a group",
}

// TestSkyCapturesGSVAssembly replays every capture into a Sky. Every GSV
// expected.json counts reaches the model (go-nmea decodes them all), and
// in the captures without breaks every one ends up in a whole group.
func TestSkyCapturesGSVAssembly(t *testing.T) {
	for _, want := range loadExpectedTypes(t) {
		t.Run(want.File, func(t *testing.T) {
			r := replaySky(t, want.File)
			gsv := 0
			for addr, n := range want.SentenceTypes {
				if isTwoLetters(addr, "GSV") && !strings.HasPrefix(addr, "P") {
					gsv += n
				}
			}
			if r.gsvParsed != gsv {
				t.Errorf("GSV decoded %d, expected.json counts %d", r.gsvParsed, gsv)
			}
			c := r.sky.Counts()
			if why, ok := gsvBreaks[want.File]; ok {
				if c.GSVBroken == 0 {
					t.Errorf("no broken GSV group, but this capture %s", why)
				}
				return
			}
			if c.GSVBroken != 0 || r.parts != r.gsvParsed {
				t.Errorf("%d broken groups, %d of %d GSV in whole groups; want all", c.GSVBroken, r.parts, r.gsvParsed)
			}
			if len(c.Malformed) != 0 {
				t.Errorf("malformed %v in a real capture", c.Malformed)
			}
		})
	}
}

// loadExpectedTypes reads each file's sentence_types from expected.json.
func loadExpectedTypes(t *testing.T) []struct {
	File          string         `json:"file"`
	SentenceTypes map[string]int `json:"sentence_types"`
} {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(captureDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Files []struct {
			File          string         `json:"file"`
			SentenceTypes map[string]int `json:"sentence_types"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Files) == 0 {
		t.Fatalf("expected.json: %v (%d files)", err, len(doc.Files))
	}
	return doc.Files
}

// TestSkyCapturesLastView checks the view at the end of real captures
// against the figures read off their last sentences by hand.
func TestSkyCapturesLastView(t *testing.T) {
	type cv = ConstellationView
	tests := []struct {
		file             string
		fix              FixType
		quality, used    int
		pdop, hdop, vdop float64
		alt              float64
		cons             []cv // Name, InView, Tracked, Used, CN0Max checked; CN0Mean to 0.01
	}{
		{
			// Multi-band: GPS L1+L5 and BeiDou B1+B2a groups, one
			// satellite counted once with its stronger signal; GSA with
			// NMEA 4.10 system IDs; three SBAS in the GPGSV.
			file: "unicore-um621.log", fix: Fix3D, quality: 1, used: 27,
			pdop: 1.05, hdop: 0.67, vdop: 0.81, alt: 1108.6,
			cons: []cv{
				{Name: GPS, InView: 10, Tracked: 9, Used: 9, CN0Mean: 281.0 / 9, CN0Max: 41},
				{Name: GLONASS, InView: 8, Tracked: 6, Used: 5, CN0Mean: 193.0 / 6, CN0Max: 41},
				{Name: Galileo, InView: 9, Tracked: 4, Used: 4, CN0Mean: 30.75, CN0Max: 44},
				{Name: BeiDou, InView: 14, Tracked: 9, Used: 9, CN0Mean: 256.0 / 9, CN0Max: 40},
				{Name: SBAS, InView: 3},
			},
		},
		{
			// GPGGA and GAGGA per epoch (GP counts 5, GA 1): GP is reported;
			// a 2D fix; BeiDou numbered 208.. in GSA but 08.. in GSV.
			file: "telit-pls83-w.log", fix: Fix2D, quality: 1, used: 5,
			pdop: 1.6, hdop: 1.3, vdop: 0.9, alt: 250.7,
			cons: []cv{
				{Name: GPS, InView: 10, Tracked: 9, Used: 5, CN0Mean: 258.0 / 9, CN0Max: 50},
				{Name: GLONASS, InView: 10, Tracked: 9, Used: 5, CN0Mean: 301.0 / 9, CN0Max: 48},
				{Name: Galileo, InView: 13, Tracked: 1, Used: 1, CN0Mean: 47, CN0Max: 47},
				{Name: BeiDou, InView: 5, Tracked: 4, Used: 3, CN0Mean: 44, CN0Max: 49},
			},
		},
		{
			// Two GNGSA without system ID, one GPS and one GLONASS; the
			// last GLGSV group is cut off, so the one before stands.
			file: "st-teseo-liv3f.log", fix: Fix3D, quality: 2, used: 17,
			pdop: 1.1, hdop: 0.6, vdop: 0.9, alt: 234.12,
			cons: []cv{
				{Name: GPS, InView: 10, Tracked: 10, Used: 8, CN0Mean: 333.0 / 10, CN0Max: 50},
				{Name: GLONASS, InView: 10, Tracked: 10, Used: 9, CN0Mean: 33.8, CN0Max: 45},
				{Name: SBAS, InView: 3, Tracked: 3, CN0Mean: 39, CN0Max: 40},
			},
		},
		{
			// GSV every five seconds, Galileo numbered 301-336, DOP 0.00 in
			// GSA (unknown) so HDOP comes from GGA.
			file: "jl-micro-jlt.log", fix: Fix3D, quality: 2, used: 12, hdop: 99, alt: 53.3,
			cons: []cv{
				{Name: GPS, InView: 11, Tracked: 10, Used: 9, CN0Mean: 40.9, CN0Max: 46},
				{Name: Galileo, InView: 8, Tracked: 8, Used: 5, CN0Mean: 38.5, CN0Max: 43},
				{Name: SBAS, InView: 2, Tracked: 2, CN0Mean: 39, CN0Max: 40},
			},
		},
		{
			// No fix at all: an empty GSV group, GSA fix 1 with 99.99.
			file: "ublox-lea-5q.log", fix: FixNone, quality: 0, used: 0,
			pdop: 99.99, hdop: 99.99, vdop: 99.99,
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			r := replaySky(t, tc.file)
			v := r.sky.View(r.last)
			if v.FixType != tc.fix || v.FixQuality != tc.quality || v.SatellitesUsed != tc.used {
				t.Errorf("fix %v quality %d used %d, want %v %d %d", v.FixType, v.FixQuality, v.SatellitesUsed, tc.fix, tc.quality, tc.used)
			}
			if v.PDOP != tc.pdop || v.HDOP != tc.hdop || v.VDOP != tc.vdop {
				t.Errorf("DOP %v/%v/%v, want %v/%v/%v", v.PDOP, v.HDOP, v.VDOP, tc.pdop, tc.hdop, tc.vdop)
			}
			if v.HasAltitude != (tc.alt != 0) || v.Altitude != tc.alt {
				t.Errorf("altitude %v (%v), want %v", v.Altitude, v.HasAltitude, tc.alt)
			}
			if len(v.Constellations) != len(tc.cons) {
				t.Errorf("constellations %+v, want %+v", v.Constellations, tc.cons)
			}
			for _, want := range tc.cons {
				got := v.Constellation(want.Name)
				if got.InView != want.InView || got.Tracked != want.Tracked || got.Used != want.Used ||
					got.CN0Max != want.CN0Max || math.Abs(got.CN0Mean-want.CN0Mean) > 0.01 {
					t.Errorf("%s: %+v, want %+v", want.Name, got, want)
				}
			}
			if v.Antenna != AntennaUnknown {
				t.Errorf("antenna %q; no capture reports one", v.Antenna)
			}
		})
	}
}

// TestReceiverSkyFromCapture replays a multi-GNSS capture through a pty
// into the real serial path: Receiver.Sky shows what the sentences said,
// with a malformed GSV and line noise counted on the way, and empties once
// the injected clock passes SkyStaleAfter.
func TestReceiverSkyFromCapture(t *testing.T) {
	capture, err := os.ReadFile(filepath.Join(captureDir, "telit-pls83-w.log"))
	if err != nil {
		t.Fatal(err)
	}
	stream := append(StripComments(capture), "\x00\xff garbage\r\n"...)
	stream = AppendSentence(stream, "GPGSV,3,5,10,02,51,278,26")
	link := deviceLink(t)
	m := openPTY(t, link)
	clk := clocktest.NewManual(time.Date(2025, 9, 4, 4, 35, 49, 0, time.UTC))
	run := startReceiver(t, Config{Device: link, SkyStaleAfter: 10 * time.Second}, clk)
	go func() {
		for range run.fixes {
		}
	}()
	if err := Replay(context.Background(), m, Bursts(stream), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "all bytes read", func() bool { return run.r.Stats().BytesRead == uint64(len(stream)) })
	v := run.r.Sky()
	if v.FixType != Fix2D || v.SatellitesUsed != 5 || v.PDOP != 1.6 {
		t.Errorf("fix %v used %d PDOP %v, want 2d 5 1.6", v.FixType, v.SatellitesUsed, v.PDOP)
	}
	if g := v.Constellation(Galileo); g.InView != 13 || g.Used != 1 {
		t.Errorf("Galileo %+v, want 13 in view, 1 used", g)
	}
	if v.Counts.Malformed["GSV"] != 1 || v.Counts.GSVGroups != 36 {
		t.Errorf("counts %+v, want 36 groups and the one malformed GSV", v.Counts)
	}
	clk.Advance(10*time.Second + time.Nanosecond)
	if v := run.r.Sky(); len(v.Constellations) != 0 || v.FixType != FixUnknown || v.SatellitesUsed != -1 {
		t.Errorf("view %+v after 10 s of silence, want it empty", v)
	}
}
