package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/netsvc"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/timing"
)

// fixedClock is the node's clock, stopped, so ages read exactly.
type fixedClock struct{ t time.Time }

func (f fixedClock) Now() time.Time { return f.t }

type fixedTiming struct{ st *timing.Status }

func (f fixedTiming) Status() *timing.Status { return f.st }

// captureReceiver is a receiver whose view is what a real capture left.
type captureReceiver struct{ sky gnss.SkyView }

func (c captureReceiver) Stats() gnss.Stats { return gnss.Stats{State: gnss.StateOK} }
func (c captureReceiver) Sky() gnss.SkyView { return c.sky }

// captureNode serves the real netsvc handler for a node in HOLDOVER whose
// receiver view is the end of capture, and a metrics exposition whose
// counters grow by 10 NTP replies, 2 NTS answers and 1 attestation per
// scrape. It returns the API and the metrics URLs.
func captureNode(t *testing.T, capture string) (string, string) {
	t.Helper()
	b, err := os.ReadFile("../../testdata/nmea/" + capture)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var k gnss.Sky
	k.Feed(gnss.StripComments(b), now)
	key, err := signer.GenerateDevelopment(rand.Reader, now.Add(-time.Hour), 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	st := &timing.Status{State: timing.Holdover, Stratum: 1, Reason: "reference lost; holding frequency",
		Offset: 1500 * time.Nanosecond, FrequencyPPB: -12.5, ErrorBound: 20 * time.Microsecond, BoundAsOf: now, MaxBound: time.Millisecond,
		StateSince: now.Add(-95 * time.Second), LastPulse: now.Add(-98 * time.Second), LastFix: now.Add(-400 * time.Millisecond)}
	api := &netsvc.API{Clock: fixedClock{now}, Timing: fixedTiming{st}, Signer: signer.NewSigner(key, time.Now), AuthorityID: "test",
		MaxAge: 30 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Receiver: captureReceiver{k.View(now)}}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	var scrapes atomic.Int64
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := scrapes.Add(1)
		fmt.Fprintf(w, "# TYPE timenode_ntp_replies_total counter\ntimenode_ntp_replies_total %d\n", 1000+10*n)
		fmt.Fprintf(w, "# TYPE timenode_nts_requests_total counter\ntimenode_nts_requests_total{result=\"ok\"} %d\ntimenode_nts_requests_total{result=\"bad_cookie\"} %d\n", 2*n, 50*n)
		fmt.Fprintf(w, "# TYPE timenode_attestations_total counter\ntimenode_attestations_total %d\n", n)
		fmt.Fprintf(w, "# TYPE mtls_cert_days_remaining gauge\nmtls_cert_days_remaining{cert=\"server\"} 41.5\nmtls_cert_days_remaining{cert=\"client_ca:dev\"} 3650\n")
	}))
	t.Cleanup(metrics.Close)
	return srv.URL, metrics.URL + "/metrics"
}

// TestStatusReceiverFromCapture: the human table shows the state and why,
// the ages, the rates and the receiver section as the telit capture left
// it (figures read off its last sentences), and --json carries the same.
func TestStatusReceiverFromCapture(t *testing.T) {
	node, metrics := captureNode(t, "telit-pls83-w.log")
	code, out, errOut := run("status", node, "--metrics", metrics, "--rate-interval", "200ms")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	for _, want := range []string{
		"Node            : " + node + "  HTTP 200, ok",
		"State           : HOLDOVER since ",
		"Reason          : reference lost; holding frequency",
		"Offset          : +1.5µs",
		"Frequency       : -12.500 ppb",
		"Error bound     : 20µs",
		"Last pulse      : 1m38s ago",
		"Last fix        : 400ms ago",
		"Cert days left  : server 41.5, client_ca:dev 3650.0",
		"Fix             : 2d, quality 1, 5 satellites in the fix",
		"DOP             : P 1.60  H 1.30  V 0.90",
		"Altitude        : 250.7 m",
		"Antenna         : unknown",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Columns are right-aligned; compare the fields.
	rows := map[string]string{
		"gps":     "10 9 5 28.7 50",
		"glonass": "10 9 5 33.4 48",
		"galileo": "13 1 1 47.0 47",
		"beidou":  "5 4 3 44.0 49",
		"total":   "38 23 14",
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 {
			if want, ok := rows[f[0]]; ok {
				if got := strings.Join(f[1:], " "); got != want {
					t.Errorf("%s row %q, want %q", f[0], got, want)
				}
				delete(rows, f[0])
			}
		}
	}
	if len(rows) != 0 {
		t.Errorf("rows missing: %v\n%s", rows, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Holdover since") && !strings.Contains(l, "(1m35s ago)") {
			t.Errorf("holdover line %q, want 1m35s ago", l)
		}
	}

	code, out, _ = run("status", node, "--metrics", metrics, "--rate-interval", "200ms", "--json")
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	c := rep.Health.Clock
	if c.HoldoverSince == "" || c.Reason == "" || c.LastPulseAgeMs == nil || *c.LastPulseAgeMs < 98000 {
		t.Errorf("--json clock %+v, want holdover since, reason and a 98 s pulse age", c)
	}
	if rep.Health.Receiver == nil || len(rep.Health.Receiver.Satellites) != 38 {
		t.Errorf("--json receiver %+v, want 38 satellites", rep.Health.Receiver)
	}
	// 10 replies, 2 NTS answers and 1 attestation per 200 ms (the bad
	// cookies are not served).
	if s := rep.Served; s == nil || !near(s.NTPPerSec*s.IntervalSecs, 10) || !near(s.NTSPerSec*s.IntervalSecs, 2) || !near(s.AttestPerSec*s.IntervalSecs, 1) {
		t.Errorf("served %+v, want 10 NTP, 2 NTS, 1 attestation per interval", rep.Served)
	}
}

func near(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }

// TestStatusWatch: --watch repeats until --count, the rates then come
// from consecutive reports.
func TestStatusWatch(t *testing.T) {
	node, metrics := captureNode(t, "jl-micro-jlt.log")
	code, out, errOut := run("status", node, "--metrics", metrics, "--watch", "50ms", "--count", "3", "--rate-interval", "0")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
	if n := strings.Count(out, "State           : HOLDOVER"); n != 3 {
		t.Errorf("%d reports, want 3:\n%s", n, out)
	}
	// No rates in the first report (no second sample), rates after.
	if n := strings.Count(out, "Served          : NTP"); n != 2 || strings.Index(out, "Served") < strings.Index(out, "Receiver") {
		t.Errorf("rates in %d reports, want the 2 after the first:\n%s", n, out)
	}
	if !strings.Contains(out, "galileo") || !strings.Contains(out, "DOP             : P -  H 99.00  V -") {
		t.Errorf("jl-micro receiver view missing:\n%s", out)
	}
}

// TestStatusUnreachable: a node that does not answer exits 1 with a hint;
// a bad URL is a usage error.
func TestStatusUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "http://" + addr, "--metrics", "none"}, 1, "is timenoded running"},
		{[]string{"status", "ftp://node"}, 2, "want https://HOST:PORT"},
		{[]string{"status", "--watch", "-1s"}, 2, "cannot be negative"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d stdout %q stderr %q, want %d and %q", code, out, errOut, tc.code, tc.want)
			}
		})
	}
}

// TestWriteStatus: how unknowns read in the table.
func TestWriteStatus(t *testing.T) {
	pulse := int64(1500)
	tests := []struct {
		name   string
		rep    statusReport
		want   []string
		absent []string
	}{
		{"locked, no receiver, metrics down",
			statusReport{Node: "https://n:5443", HTTPStatus: 200, MetricsError: "metrics: connection refused",
				Health: netsvc.Health{Status: "ok", Clock: netsvc.HealthClock{State: "LOCKED", Stratum: 1, OffsetNs: -250, Leap: "none", TAIOffset: 37, LastPulseAgeMs: &pulse},
					Signer: netsvc.HealthSigner{Ready: true, KeyIDs: []string{"k1"}}}},
			[]string{"Reason          : -", "Offset          : -250ns", "Holdover since  : -", "Last pulse      : 1.5s ago", "Last fix        : never",
				"Leap            : none (TAI-UTC 37 s)", "Signer          : ready, 1 key(s)", "Served          : unknown (metrics: connection refused)",
				"View            : not reported by this node"},
			[]string{"Cert days left", "development", "Reasons", "Witness move", "Witnesses"}},
		{"unavailable, receiver with nothing fresh",
			statusReport{Node: "http://n:5000", HTTPStatus: 503,
				Health: netsvc.Health{Status: "unavailable", Reason: "clock FREERUN: waiting for GNSS",
					Clock:    netsvc.HealthClock{State: "FREERUN", Stratum: 16, Reason: "waiting for GNSS", Leap: "none"},
					Signer:   netsvc.HealthSigner{KeyIDs: []string{}, Development: true},
					Receiver: &netsvc.HealthReceiver{Line: "no_data", FixType: "unknown", Antenna: "open", AntennaReported: "2030-01-01T00:00:00Z"}}},
			[]string{"HTTP 503, unavailable (clock FREERUN: waiting for GNSS)", "Signer          : NOT READY, 0 key(s), development",
				"Line            : no_data", "Fix             : unknown", "DOP             : P -  H -  V -",
				"Antenna         : open (reported 2030-01-01T00:00:00Z)", "Satellites      : none reported recently"},
			[]string{"Served", "Constellation"}},
		{"integrity untrusted with a witness move",
			statusReport{Node: "https://n:5443", HTTPStatus: 200, At: time.Date(2030, 1, 1, 0, 5, 0, 0, time.UTC),
				Health: netsvc.Health{Status: "ok", Clock: netsvc.HealthClock{State: "HOLDOVER"},
					Integrity: &netsvc.HealthIntegrity{State: "untrusted", Since: "2030-01-01T00:00:00Z", Enforced: true,
						BoundWideningNs: 157000, ResidualErrorNs: 157000, Reasons: []string{"pps/frequency_change"},
						WitnessMove: &netsvc.HealthWitnessMove{MoveNs: 112000, StdErrNs: 15000, RateNsPerS: 15, Witnesses: 3, FloorNs: 157000},
						Witnesses:   []netsvc.WitnessReach{{Name: "a:2002", Up: true}, {Name: "b:4460", Failure: "certificate"}, {Name: "c:2002", Up: true}, {Name: "d:4460"}}}}},
			[]string{"Integrity       : untrusted since 2030-01-01T00:00:00Z (5m0s ago), not following GNSS, bound widened by 157µs, residual 157µs",
				"Reasons         : pps/frequency_change", "Witness move    : +112µs ± 15µs (3 witnesses, +15.0 ns/s), floor 157µs",
				"Witnesses       : 2 of 4 answering; not answering: b:4460 (certificate), d:4460"},
			[]string{"monitored"}},
		{"integrity monitored",
			statusReport{Node: "https://n:5443", HTTPStatus: 200, At: time.Date(2030, 1, 1, 0, 0, 10, 0, time.UTC),
				Health: netsvc.Health{Status: "ok", Clock: netsvc.HealthClock{State: "LOCKED"},
					Integrity: &netsvc.HealthIntegrity{State: "suspect", Since: "2030-01-01T00:00:00Z", FollowingGNSS: true, Reasons: []string{"receiver/cn0_uniform"},
						WitnessMove: &netsvc.HealthWitnessMove{MoveNs: -3000, StdErrNs: 15000, Witnesses: 2},
						Witnesses:   []netsvc.WitnessReach{{Name: "a:2002", Up: true}, {Name: "c:2002", Up: true}}}}},
			[]string{"Integrity       : suspect since 2030-01-01T00:00:00Z (10s ago), monitored, not enforced", "Witness move    : -3µs ± 15µs (2 witnesses, +0.0 ns/s), no floor",
				"Witnesses       : 2 of 2 answering\n"},
			[]string{"widened", "residual", "not answering"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writeStatus(&b, &tc.rep)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("lacks %q:\n%s", w, b.String())
				}
			}
			for _, w := range tc.absent {
				if strings.Contains(b.String(), w) {
					t.Errorf("has %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// TestParseMetricsRates: the served counters and certificates out of an
// exposition, and rates that survive a daemon restart.
func TestParseMetricsRates(t *testing.T) {
	tests := []struct {
		name       string
		a, b       string
		dt         time.Duration
		ntp, nts   float64
		attest     float64
		certServer float64
	}{
		{"growth over 2 s",
			"timenode_ntp_replies_total 100\ntimenode_attestations_total 10\n",
			"timenode_ntp_replies_total 140\ntimenode_attestations_total 16\nmtls_cert_days_remaining{cert=\"server\"} 12\n",
			2 * time.Second, 20, 0, 3, 12},
		{"NTS: only answered requests",
			"timenode_nts_requests_total{result=\"ok\"} 5\ntimenode_nts_requests_total{result=\"malformed\"} 5\n",
			"timenode_nts_requests_total{result=\"ok\"} 9\ntimenode_nts_requests_total{result=\"malformed\"} 500\n",
			time.Second, 0, 4, 0, 0},
		{"restart: counters start again",
			"timenode_ntp_replies_total 5000\n", "timenode_ntp_replies_total 30\n",
			time.Second, 30, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseMetrics(strings.NewReader(tc.a))
			if err != nil {
				t.Fatal(err)
			}
			b, err := parseMetrics(strings.NewReader(tc.b))
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Unix(1e9, 0)
			a.at, b.at = t0, t0.Add(tc.dt)
			r := rates(a, b)
			if r == nil || r.NTPPerSec != tc.ntp || r.NTSPerSec != tc.nts || r.AttestPerSec != tc.attest || b.certs["server"] != tc.certServer {
				t.Errorf("rates %+v certs %v, want NTP %v NTS %v attest %v server %v", r, b.certs, tc.ntp, tc.nts, tc.attest, tc.certServer)
			}
		})
	}
	if _, err := parseMetrics(strings.NewReader("not an exposition {")); err == nil {
		t.Error("garbage parsed")
	}
}
