package netsvc

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/netsvc/certaudit"
	"github.com/aunsorm/timenode/netsvc/mtls"
)

var (
	descGNSSSent  = prometheus.NewDesc("timenode_gnss_sentences_total", "NMEA sentences by outcome.", []string{"result"}, nil)
	descGNSSDrop  = prometheus.NewDesc("timenode_gnss_bytes_dropped_total", "Bytes dropped by the NMEA framer (garbage, overlong lines).", nil, nil)
	descGNSSRead  = prometheus.NewDesc("timenode_gnss_bytes_read_total", "Bytes read from the receiver.", nil, nil)
	descGNSSRec   = prometheus.NewDesc("timenode_gnss_reconnects_total", "Receiver device reopens after failures.", nil, nil)
	descGNSSEpoch = prometheus.NewDesc("timenode_gnss_epochs_total", "Epochs (per-second fixes) assembled from NMEA.", nil, nil)
	descGNSSState = prometheus.NewDesc("timenode_gnss_state", "1 for the receiver line's current state, 0 for the others.", []string{"state"}, nil)
	descPPS       = prometheus.NewDesc("timenode_pps_pulses_total", "PPS edges fetched.", []string{"quality"}, nil)
	descPPSMiss   = prometheus.NewDesc("timenode_pps_missed_total", "PPS edges known to be missed.", []string{"quality"}, nil)
	descPPSTmo    = prometheus.NewDesc("timenode_pps_timeouts_total", "PPS fetches that saw no edge within the timeout.", []string{"quality"}, nil)
	descHSRatio   = prometheus.NewDesc("mtls_handshake_success_ratio", "Share of TLS handshakes on the HTTPS port whose client verification succeeded, since start.", nil, nil)
	descHSTotal   = prometheus.NewDesc("timenode_tls_handshakes_total", "TLS handshakes on the HTTPS port by result.", []string{"result"}, nil)
	descHSFail    = prometheus.NewDesc("mtls_handshake_failures_total", "Client handshakes on the HTTPS port refused by verification, by reason.", []string{"reason"}, nil)
)

// Hardware is what the hardware collector reads at scrape time.
type Hardware struct {
	GNSS func() gnss.Stats
	// Sky, when set, exports the receiver's view: satellites, CN0, fix,
	// DOP and antenna (metrics_gnss.go).
	Sky        func() gnss.SkyView
	PPS        func() pps.Stats
	PPSQuality pps.Quality
}

type hwCollector struct{ hw Hardware }

func (c *hwCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGNSSSent, descGNSSDrop, descGNSSRead, descGNSSRec, descGNSSEpoch, descGNSSState, descPPS, descPPSMiss, descPPSTmo} {
		ch <- d
	}
}

func (c *hwCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if c.hw.GNSS != nil {
		s := c.hw.GNSS()
		for _, r := range []struct {
			name string
			v    uint64
		}{{"ok", s.SentencesOK}, {"checksum_bad", s.ChecksumBad}, {"checksum_missing", s.ChecksumMissing},
			{"unparsable", s.Unparsable}, {"unknown_type", s.UnknownType}} {
			counter(descGNSSSent, r.v, r.name)
		}
		counter(descGNSSDrop, s.BytesDropped)
		counter(descGNSSRead, s.BytesRead)
		counter(descGNSSRec, s.Reconnects)
		counter(descGNSSEpoch, s.Epochs)
		for _, st := range []string{gnss.StateOK, gnss.StateNoData, gnss.StateNotNMEA, gnss.StateDisconnected} {
			v := 0.0
			if st == s.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descGNSSState, prometheus.GaugeValue, v, st)
		}
	}
	if c.hw.PPS != nil {
		s, q := c.hw.PPS(), c.hw.PPSQuality.String()
		counter(descPPS, s.Pulses, q)
		counter(descPPSMiss, s.Missed, q)
		counter(descPPSTmo, s.Timeouts, q)
	}
}

// RegisterHardware exports the receiver and PPS counters, and the
// receiver's view when hw.Sky is set.
func (m *Metrics) RegisterHardware(hw Hardware) {
	m.reg.MustRegister(&hwCollector{hw: hw})
	if hw.Sky != nil {
		m.reg.MustRegister(&skyCollector{sky: hw.Sky})
	}
}

type tlsCollector struct {
	mgr *mtls.Manager
}

func (c *tlsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHSRatio
	ch <- descHSTotal
	ch <- descHSFail
}

func (c *tlsCollector) Collect(ch chan<- prometheus.Metric) {
	att, done := c.mgr.HandshakeStats()
	ratio := 1.0
	if att > 0 {
		ratio = float64(done) / float64(att)
	}
	ch <- prometheus.MustNewConstMetric(descHSRatio, prometheus.GaugeValue, ratio)
	ch <- prometheus.MustNewConstMetric(descHSTotal, prometheus.CounterValue, float64(done), "ok")
	ch <- prometheus.MustNewConstMetric(descHSTotal, prometheus.CounterValue, float64(att-done), "failed")
	for reason, n := range c.mgr.Failures() {
		ch <- prometheus.MustNewConstMetric(descHSFail, prometheus.CounterValue, float64(n), reason)
	}
}

// RegisterTLS exports handshake outcomes, and for every certificate the
// daemon uses (server certificate, client CAs) its days remaining and the
// policy violations of SPEC.md §7 (certaudit).
func (m *Metrics) RegisterTLS(clk clock.Clock, mgr *mtls.Manager) {
	m.reg.MustRegister(&tlsCollector{mgr: mgr},
		certaudit.NewCollector(MaterialCerts(mgr), clk.Now, certaudit.DefaultPolicy()))
}

// MaterialCerts names the server certificate and each client CA of mgr's
// current material for the certificate collector.
func MaterialCerts(mgr *mtls.Manager) func() []certaudit.NamedCert {
	return func() []certaudit.NamedCert {
		mat := mgr.Material()
		out := []certaudit.NamedCert{{Name: "server", Cert: mat.Leaf}}
		for _, ca := range mat.CAs {
			out = append(out, certaudit.NamedCert{Name: "client_ca:" + ca.Subject.CommonName, Cert: ca})
		}
		return out
	}
}
