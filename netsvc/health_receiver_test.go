package netsvc

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/timing"
)

// fixedClock reads one instant.
type fixedNow struct{ t time.Time }

func (f fixedNow) Now() time.Time { return f.t }

// fakeReceiver is a receiver whose view comes from a real capture.
type fakeReceiver struct {
	stats gnss.Stats
	sky   gnss.SkyView
}

func (f fakeReceiver) Stats() gnss.Stats { return f.stats }
func (f fakeReceiver) Sky() gnss.SkyView { return f.sky }
func captureSky(t *testing.T, name string, at time.Time) gnss.SkyView {
	t.Helper()
	b, err := os.ReadFile("../testdata/nmea/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var k gnss.Sky
	if k.Feed(gnss.StripComments(b), at) == 0 {
		t.Fatalf("%s: nothing decoded", name)
	}
	return k.View(at)
}

// healthDoc serves /health for st and decodes it.
func healthDoc(t *testing.T, now time.Time, st *timing.Status, rx ReceiverSource) (int, Health) {
	t.Helper()
	key, err := signer.GenerateDevelopment(rand.Reader, now.Add(-time.Hour), 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	api := &API{Clock: fixedNow{now}, Timing: lockedTiming{st}, Signer: signer.NewSigner(key, func() time.Time { return now }),
		AuthorityID: "test", MaxAge: 30 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Receiver: rx}
	code, _, _ := do(api.Handler(), "/health", true, "")
	h, _ := api.CheckHealth()
	// Round-trip through JSON, as a client reads it.
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var out Health
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return code, out
}

// TestHealthHoldoverFields: holdover since, pulse and fix ages, and a
// reason that stays while a HOLDOVER node still serves.
func TestHealthHoldoverFields(t *testing.T) {
	now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	entered := now.Add(-90 * time.Second)
	bound := func(s timing.Status) *timing.Status {
		s.Stratum, s.ErrorBound, s.BoundAsOf, s.MaxBound = 1, time.Microsecond, now, time.Millisecond
		return &s
	}
	tests := []struct {
		name           string
		st             *timing.Status
		code           int
		reason, since  string
		pulseMs, fixMs int64 // -1: null
	}{
		{"locked", bound(timing.Status{State: timing.Locked, StateSince: now.Add(-time.Hour), LastPulse: now.Add(-200 * time.Millisecond), LastFix: now.Add(-100 * time.Millisecond)}),
			http.StatusOK, "", "", 200, 100},
		{"holdover, still serving", bound(timing.Status{State: timing.Holdover, Reason: "reference lost; holding frequency", StateSince: entered,
			LastPulse: entered.Add(-2500 * time.Millisecond), LastFix: now.Add(-300 * time.Millisecond)}),
			http.StatusOK, "reference lost; holding frequency", "2030-05-01T11:58:30Z", 92500, 300},
		{"holdover without a reason set", bound(timing.Status{State: timing.Holdover, StateSince: entered}),
			http.StatusOK, "reference lost; holding frequency", "2030-05-01T11:58:30Z", -1, -1},
		{"freerun before any pulse", &timing.Status{State: timing.Freerun, Stratum: 16, Reason: "waiting for GNSS"},
			http.StatusServiceUnavailable, "waiting for GNSS", "", -1, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, h := healthDoc(t, now, tc.st, nil)
			c := h.Clock
			if code != tc.code || c.Reason != tc.reason || c.HoldoverSince != tc.since {
				t.Errorf("code %d reason %q holdover_since %q, want %d %q %q", code, c.Reason, c.HoldoverSince, tc.code, tc.reason, tc.since)
			}
			for _, a := range []struct {
				name string
				got  *int64
				want int64
			}{{"last_pulse_age_ms", c.LastPulseAgeMs, tc.pulseMs}, {"last_fix_age_ms", c.LastFixAgeMs, tc.fixMs}} {
				switch {
				case a.want < 0 && a.got != nil:
					t.Errorf("%s = %d, want null", a.name, *a.got)
				case a.want >= 0 && (a.got == nil || *a.got != a.want):
					t.Errorf("%s = %v, want %d", a.name, a.got, a.want)
				}
			}
			if h.Receiver != nil {
				t.Errorf("receiver %+v without a receiver wired", h.Receiver)
			}
		})
	}
}

// TestHealthReceiverFromCapture: /health's receiver object shows what a
// real multi-GNSS capture said, with unknowns as null.
func TestHealthReceiverFromCapture(t *testing.T) {
	now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	st := &timing.Status{State: timing.Locked, Stratum: 1, ErrorBound: time.Microsecond, BoundAsOf: now}
	tests := []struct {
		file    string
		fix     string
		quality *int
		pdop    *float64
		cons    string // name:in_view/tracked/used, ...
	}{
		{"telit-pls83-w.log", "2d", ptr(1), ptr(1.6), "gps:10/9/5 glonass:10/9/5 galileo:13/1/1 beidou:5/4/3"},
		{"jl-micro-jlt.log", "3d", ptr(2), nil, "gps:11/10/9 galileo:8/8/5 sbas:2/2/0"},
		{"hp58534a.log", "unknown", nil, nil, ""}, // no checksums: nothing decoded but stats
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			var sky gnss.SkyView
			if tc.cons != "" {
				sky = captureSky(t, tc.file, now)
			} else {
				sky = (&gnss.Sky{}).View(now)
			}
			_, h := healthDoc(t, now, st, fakeReceiver{gnss.Stats{State: gnss.StateOK}, sky})
			r := h.Receiver
			if r == nil {
				t.Fatal("no receiver object")
			}
			var cons []string
			for _, c := range r.Constellations {
				cons = append(cons, c.Name+":"+itoa(c.InView)+"/"+itoa(c.Tracked)+"/"+itoa(c.Used))
			}
			if got := strings.Join(cons, " "); got != tc.cons || r.FixType != tc.fix || r.Line != "ok" || r.Antenna != "unknown" {
				t.Errorf("constellations %q fix %q line %q antenna %q, want %q %q ok unknown", got, r.FixType, r.Line, r.Antenna, tc.cons, tc.fix)
			}
			if !eqPtr(r.FixQuality, tc.quality) || !eqPtr(r.PDOP, tc.pdop) {
				t.Errorf("fix quality %v PDOP %v, want %v %v", r.FixQuality, r.PDOP, tc.quality, tc.pdop)
			}
			if r.Constellations == nil || r.Satellites == nil {
				t.Error("constellations or satellites null, want [] at worst")
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func eqPtr[T comparable](a, b *T) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// TestSkyMetrics: the exposition of a view with two constellations, a
// 3D fix, DOPs and an open antenna; every constellation is exported so a
// sum over them never misses a series.
func TestSkyMetrics(t *testing.T) {
	v := gnss.SkyView{
		Constellations: []gnss.ConstellationView{
			{Name: gnss.GPS, InView: 9, Tracked: 7, Used: 6, CN0Mean: 40.5, CN0Max: 46},
			{Name: gnss.Galileo, InView: 5, Used: 0},
		},
		FixType: gnss.Fix3D, FixQuality: 1, SatellitesUsed: 6, PDOP: 1.6, HDOP: 0.9, Antenna: gnss.AntennaOpen,
		Counts: gnss.SkyCounts{GSVGroups: 12, GSVBroken: 1, Malformed: map[string]uint64{"GSA": 2}},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&skyCollector{sky: func() gnss.SkyView { return v }})
	want := `
# HELP timenode_gnss_antenna_status 1 for the antenna supervisor's last report (ok, open, short; unknown if the receiver never reported), 0 for the others.
# TYPE timenode_gnss_antenna_status gauge
timenode_gnss_antenna_status{status="ok"} 0
timenode_gnss_antenna_status{status="open"} 1
timenode_gnss_antenna_status{status="short"} 0
timenode_gnss_antenna_status{status="unknown"} 0
# HELP timenode_gnss_cn0_dbhz Carrier-to-noise density of the tracked satellites, dB-Hz, by constellation and statistic (mean, max); absent for a constellation with none tracked.
# TYPE timenode_gnss_cn0_dbhz gauge
timenode_gnss_cn0_dbhz{constellation="gps",stat="max"} 46
timenode_gnss_cn0_dbhz{constellation="gps",stat="mean"} 40.5
# HELP timenode_gnss_dop Dilution of precision from GSA (HDOP from GGA without one), by kind (pdop, hdop, vdop); absent when unknown.
# TYPE timenode_gnss_dop gauge
timenode_gnss_dop{kind="hdop"} 0.9
timenode_gnss_dop{kind="pdop"} 1.6
# HELP timenode_gnss_fix_quality Fix quality from GGA (0 none, 1 GPS, 2 DGPS, 4 RTK, ...); absent when unknown.
# TYPE timenode_gnss_fix_quality gauge
timenode_gnss_fix_quality 1
# HELP timenode_gnss_fix_type Fix type from GSA: 0 unknown (no fresh GSA), 1 none, 2 2D, 3 3D.
# TYPE timenode_gnss_fix_type gauge
timenode_gnss_fix_type 3
# HELP timenode_gnss_gsv_groups_total GSV groups assembled whole (complete) or abandoned for a missing, reordered or late part (broken).
# TYPE timenode_gnss_gsv_groups_total counter
timenode_gnss_gsv_groups_total{result="broken"} 1
timenode_gnss_gsv_groups_total{result="complete"} 12
# HELP timenode_gnss_malformed_total Decoded GSV, GSA and GGA sentences with impossible values, ignored by the receiver view.
# TYPE timenode_gnss_malformed_total counter
timenode_gnss_malformed_total{sentence="GGA"} 0
timenode_gnss_malformed_total{sentence="GSA"} 2
timenode_gnss_malformed_total{sentence="GSV"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "timenode_gnss_antenna_status", "timenode_gnss_cn0_dbhz",
		"timenode_gnss_dop", "timenode_gnss_fix_quality", "timenode_gnss_fix_type", "timenode_gnss_gsv_groups_total", "timenode_gnss_malformed_total"); err != nil {
		t.Error(err)
	}
	n, err := testutil.GatherAndCount(reg, "timenode_gnss_satellites")
	if err != nil || n != 3*len(gnss.Constellations()) {
		t.Errorf("%d satellite series (%v), want in_view, tracked and used for all %d constellations", n, err, len(gnss.Constellations()))
	}
	if got := testutil.ToFloat64(gaugeOf(t, reg, "timenode_gnss_satellites", map[string]string{"constellation": "galileo", "state": "in_view"})); got != 5 {
		t.Errorf("galileo in view %v, want 5", got)
	}
}

// gaugeOf finds one series of a gathered family as a collector.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metric
				}
			}
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
			g.Set(m.GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}
