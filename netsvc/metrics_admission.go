package netsvc

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descConns = prometheus.NewDesc("timenode_connections",
		"Open connections by listener and class: handshake (TLS in progress), anonymous (no verified client certificate), authenticated.",
		[]string{"listener", "class"}, nil)
	descConnsAccepted = prometheus.NewDesc("timenode_connections_accepted_total",
		"Connections accepted from the kernel, by listener.", []string{"listener"}, nil)
	descConnsAdmitted = prometheus.NewDesc("timenode_connections_admitted_total",
		"Connections admitted to HTTP, by listener and class (anonymous, authenticated).", []string{"listener", "class"}, nil)
	descConnsRefused = prometheus.NewDesc("timenode_connections_refused_total",
		"Connections closed on arrival because every slot was held by an authenticated client, by listener.", []string{"listener"}, nil)
	descConnsEvicted = prometheus.NewDesc("timenode_connections_evicted_total",
		"Unauthenticated connections closed to make room for a newcomer, by listener and the limit it hit (source_limit, unauthenticated_limit, connection_limit).",
		[]string{"listener", "reason"}, nil)
	descHandshakeFail = prometheus.NewDesc("timenode_connections_handshake_failed_total",
		"TLS handshakes that failed before HTTP, by listener and reason (timeout, error).", []string{"listener", "reason"}, nil)
)

// admissionCollector reads each listener's admission figures at scrape
// time.
type admissionCollector struct{ ls []*Listener }

func (c *admissionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descConnsAccepted, descConnsAdmitted, descConnsRefused, descConnsEvicted, descHandshakeFail} {
		ch <- d
	}
}

func (c *admissionCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, l := range c.ls {
		st := l.adm.stats()
		gauge(descConns, st.Handshake, l.Name, "handshake")
		gauge(descConns, st.Anonymous, l.Name, "anonymous")
		gauge(descConns, st.Authenticated, l.Name, "authenticated")
		counter(descConnsAccepted, st.Accepted, l.Name)
		counter(descConnsAdmitted, st.AdmittedAnonymous, l.Name, "anonymous")
		counter(descConnsAdmitted, st.AdmittedAuthenticated, l.Name, "authenticated")
		counter(descConnsRefused, st.Refused, l.Name)
		for _, r := range evictReasons {
			counter(descConnsEvicted, st.Evicted[r], l.Name, r)
		}
		counter(descHandshakeFail, st.HandshakeTimeouts, l.Name, "timeout")
		counter(descHandshakeFail, st.HandshakeFailures, l.Name, "error")
	}
}

// registerAdmission exports the admission figures of ls; Listen calls
// it once per Metrics.
func (m *Metrics) registerAdmission(ls []*Listener) {
	m.admissionOnce.Do(func() { m.reg.MustRegister(&admissionCollector{ls: ls}) })
}
