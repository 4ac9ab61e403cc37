package certaudit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names exported by Collector.
const (
	MetricDaysRemaining    = "mtls_cert_days_remaining"
	MetricPolicyViolations = "timenode_cert_policy_violations"
)

var (
	descDays = prometheus.NewDesc(MetricDaysRemaining,
		"Days until the certificate's NotAfter (negative once expired), by the daemon's name for it.", []string{"cert"}, nil)
	descViolations = prometheus.NewDesc(MetricPolicyViolations,
		"Certificate policy findings of severity violation or rotate (expired, not yet valid, inside T-14 days, leaf lifetime over 90 days, rotation overlap under 24 h).", nil, nil)
)

// Collector exports the days remaining of every certificate the daemon
// uses and the number of policy violations among them, evaluated at
// scrape time.
type Collector struct {
	certs  func() []NamedCert
	now    func() time.Time
	policy Policy
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector over the certificates certs returns
// at each scrape (the serving certificate, the client CA bundle, the
// attestation certificate…; Name becomes the "cert" label and must be
// unique). now is the daemon's clock; p is usually DefaultPolicy().
func NewCollector(certs func() []NamedCert, now func() time.Time, p Policy) *Collector {
	return &Collector{certs: certs, now: now, policy: p}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDays
	ch <- descViolations
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	certs := c.certs()
	now := c.now()
	seen := make(map[string]bool, len(certs))
	for _, nc := range certs {
		if nc.Cert == nil || seen[nc.Name] {
			continue
		}
		seen[nc.Name] = true
		ch <- prometheus.MustNewConstMetric(descDays, prometheus.GaugeValue, nc.Cert.NotAfter.Sub(now).Hours()/24, nc.Name)
	}
	valid := certs[:0:0]
	for _, nc := range certs {
		if nc.Cert != nil {
			valid = append(valid, nc)
		}
	}
	ch <- prometheus.MustNewConstMetric(descViolations, prometheus.GaugeValue, float64(CountViolations(EvaluateNamed(valid, now, c.policy))))
}
