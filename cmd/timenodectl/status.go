package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/aunsorm/timenode/netsvc"
)

func init() {
	registerLeaf("status", leaf{use: "[URL]", args: optOneArg,
		summary: "the node at a glance: clock state and why, offset, bound, holdover, pulse and fix ages, serving rates, certificates and the GNSS receiver",
		help: `URL is the node's API, https://HOST:5443 (the default is
https://localhost:5443) or its plain listener http://HOST:5000. /health is
asked as the gateway checker asks it, so --cacert is enough over HTTPS;
--cert and --key are sent when given. The served rates and certificate
days come from the metrics (--metrics, by default port 9090 of the same
host); without them the rest is still shown. Exit 0 when the node is
healthy, 1 when it is not or cannot be reached.`,
		flags: statusCmd})
}

// statusReport is what `timenodectl status` shows, and its --json.
type statusReport struct {
	Node string    `json:"node"`
	At   time.Time `json:"at"`
	// HTTPStatus is /health's status code: 200 healthy, 503 not.
	HTTPStatus int           `json:"http_status"`
	Health     netsvc.Health `json:"health"`
	// Served are the serving rates from two samples of the metrics.
	Served *servedRates `json:"served,omitempty"`
	// CertDaysLeft maps each certificate the node uses to its days left.
	CertDaysLeft map[string]float64 `json:"cert_days_left,omitempty"`
	// MetricsError says why the metrics could not be read.
	MetricsError string `json:"metrics_error,omitempty"`
}

// servedRates are requests served per second over IntervalSecs.
type servedRates struct {
	IntervalSecs    float64 `json:"interval_secs"`
	NTPPerSec       float64 `json:"ntp_per_sec"`
	NTSPerSec       float64 `json:"nts_per_sec"`
	AttestPerSec    float64 `json:"attestations_per_sec"`
	RoughtimePerSec float64 `json:"roughtime_per_sec"`
}

// counterSeries are the metrics the rates come from: what was served, not
// what was asked (NTS requests answered, attestations signed and sent).
var counterSeries = map[string]struct{ name, label, value string }{
	"ntp":       {"timenode_ntp_replies_total", "", ""},
	"nts":       {"timenode_nts_requests_total", "result", "ok"},
	"attest":    {"timenode_attestations_total", "", ""},
	"roughtime": {"timenode_roughtime_replies_total", "", ""},
}

// metricsSample is one scrape: the counters above and the certificates.
type metricsSample struct {
	at       time.Time
	counters map[string]float64
	certs    map[string]float64
}

func statusCmd(fs *flag.FlagSet) runFunc {
	cacert := fs.String("cacert", "", "CA certificate (PEM) that signed the node's TLS certificate")
	certFile := fs.String("cert", "", "client certificate (PEM) for mTLS")
	keyFile := fs.String("key", "", "client private key (PEM) for mTLS")
	metricsURL := fs.String("metrics", "", "the node's metrics `URL` (default http://HOST:9090/metrics; \"none\" to skip)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	watch := fs.Duration("watch", 0, "refresh every `D` until interrupted (0: once)")
	count := fs.Int("count", 0, "with --watch, stop after N reports (0: until interrupted)")
	rateOver := fs.Duration("rate-interval", time.Second, "how far apart the two metrics samples of the first report are (0: no rates)")
	timeout := fs.Duration("timeout", 5*time.Second, "network timeout per request")
	return func(args []string, stdout, stderr io.Writer) int {
		const prog = "timenodectl status"
		node := "https://localhost:5443"
		if len(args) == 1 {
			node = strings.TrimSuffix(args[0], "/")
		}
		u, err := url.Parse(node)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return usageErr(stderr, prog, "URL %q: want https://HOST:PORT or http://HOST:PORT", node)
		}
		if *watch < 0 || *count < 0 || *rateOver < 0 {
			return usageErr(stderr, prog, "--watch, --count and --rate-interval cannot be negative")
		}
		mURL := *metricsURL
		if mURL == "" {
			mURL = "http://" + net.JoinHostPort(u.Hostname(), "9090") + "/metrics"
		}
		if mURL == "none" {
			mURL = ""
		}
		client := &http.Client{Timeout: *timeout}
		if u.Scheme == "https" {
			if client, err = httpsClient(*cacert, *certFile, *keyFile); err != nil {
				return fail(stderr, prog, err)
			}
			client.Timeout = *timeout
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		var prev *metricsSample
		code := 0
		for n := 1; ; n++ {
			rep, err := collectStatus(ctx, client, node, mURL, prev, *rateOver, *timeout)
			if err != nil {
				code = fail(stderr, prog, err)
			} else {
				if rep.sample != nil {
					prev = rep.sample
				}
				code = 0
				if rep.HTTPStatus != http.StatusOK {
					code = 1
				}
				if *asJSON {
					b, _ := json.MarshalIndent(rep.statusReport, "", "  ")
					fmt.Fprintf(stdout, "%s\n", b)
				} else {
					if *watch > 0 && n > 1 {
						fmt.Fprintln(stdout)
					}
					writeStatus(stdout, &rep.statusReport)
				}
			}
			if *watch == 0 || (*count > 0 && n >= *count) {
				return code
			}
			select {
			case <-ctx.Done():
				return code
			case <-time.After(*watch):
			}
		}
	}
}

// collected is a report and the metrics sample it was made with.
type collected struct {
	statusReport
	sample *metricsSample
}

// collectStatus reads /health, then the metrics: twice rateOver apart
// when there is no previous sample, else once against prev.
func collectStatus(ctx context.Context, client *http.Client, node, metricsURL string, prev *metricsSample, rateOver, timeout time.Duration) (*collected, error) {
	rep := &collected{statusReport: statusReport{Node: node, At: time.Now().UTC()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, node+"/health", nil)
	if err != nil {
		return nil, err
	}
	// The gateway checker's header: /health without a client certificate.
	req.Header.Set(netsvc.MeshHeader, "gateway")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s/health: %w", node, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch %s/health: %w", node, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return nil, fmt.Errorf("fetch %s/health: %s: %s", node, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &rep.Health); err != nil {
		return nil, fmt.Errorf("fetch %s/health: bad JSON: %w", node, err)
	}
	rep.HTTPStatus = resp.StatusCode
	if metricsURL == "" {
		return rep, nil
	}
	mc := &http.Client{Timeout: timeout}
	cur, err := scrape(ctx, mc, metricsURL)
	if err == nil && prev == nil && rateOver > 0 {
		prev = cur
		select {
		case <-ctx.Done():
			return rep, nil
		case <-time.After(rateOver):
		}
		cur, err = scrape(ctx, mc, metricsURL)
	}
	if err != nil {
		rep.MetricsError = err.Error()
		return rep, nil
	}
	rep.sample, rep.CertDaysLeft = cur, cur.certs
	if prev != nil {
		rep.Served = rates(prev, cur)
	}
	return rep, nil
}

// scrape reads the counters and certificate days from one exposition.
func scrape(ctx context.Context, c *http.Client, metricsURL string) (*metricsSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: %s", metricsURL, resp.Status)
	}
	s, err := parseMetrics(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", metricsURL, err)
	}
	s.at = time.Now()
	return s, nil
}

// parseMetrics picks the served counters and mtls_cert_days_remaining out
// of a text exposition. A counter the node does not export (no NTS) is
// left out.
func parseMetrics(r io.Reader) (*metricsSample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	s := &metricsSample{counters: map[string]float64{}, certs: map[string]float64{}}
	for key, c := range counterSeries {
		f, ok := fams[c.name]
		if !ok {
			continue
		}
		total := 0.0
		for _, m := range f.GetMetric() {
			if c.label == "" || labelValue(m.GetLabel(), c.label) == c.value {
				total += m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			}
		}
		s.counters[key] = total
	}
	if f, ok := fams["mtls_cert_days_remaining"]; ok {
		for _, m := range f.GetMetric() {
			s.certs[labelValue(m.GetLabel(), "cert")] = m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return s, nil
}

func labelValue[L interface {
	GetName() string
	GetValue() string
}](labels []L, name string) string {
	for _, l := range labels {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// rates divides the counters' growth between two samples by the time
// between them; a counter that went down (the daemon restarted) counts
// from zero.
func rates(a, b *metricsSample) *servedRates {
	dt := b.at.Sub(a.at).Seconds()
	if dt <= 0 {
		return nil
	}
	rate := func(key string) float64 {
		d := b.counters[key] - a.counters[key]
		if d < 0 {
			d = b.counters[key]
		}
		return d / dt
	}
	return &servedRates{IntervalSecs: dt, NTPPerSec: rate("ntp"), NTSPerSec: rate("nts"),
		AttestPerSec: rate("attest"), RoughtimePerSec: rate("roughtime")}
}
