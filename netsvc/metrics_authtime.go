package netsvc

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/netsvc/nts"
	"github.com/aunsorm/timenode/netsvc/roughtime"
)

var (
	descRTReq   = prometheus.NewDesc("timenode_roughtime_requests_total", "Roughtime datagrams received.", nil, nil)
	descRTRep   = prometheus.NewDesc("timenode_roughtime_replies_total", "Roughtime replies sent.", nil, nil)
	descRTBatch = prometheus.NewDesc("timenode_roughtime_batches_total", "Roughtime signatures made, one per Merkle batch.", nil, nil)
	descRTRot   = prometheus.NewDesc("timenode_roughtime_online_keys_total", "Roughtime online keys made and certified by the long-term key.", nil, nil)
	descRTDrop  = prometheus.NewDesc("timenode_roughtime_dropped_total", "Roughtime requests left without reply, by reason.", []string{"reason"}, nil)
)

type roughtimeCollector struct{ stats func() roughtime.Stats }

func (c *roughtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRTReq, descRTRep, descRTBatch, descRTRot, descRTDrop} {
		ch <- d
	}
}

func (c *roughtimeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descRTReq, s.Requests)
	counter(descRTRep, s.Replies)
	counter(descRTBatch, s.Batches)
	counter(descRTRot, s.Rotations)
	for _, r := range roughtime.DropReasons {
		counter(descRTDrop, s.Dropped[r], string(r))
	}
}

// RegisterRoughtime exports the Roughtime server's counters.
func (m *Metrics) RegisterRoughtime(stats func() roughtime.Stats) {
	m.reg.MustRegister(&roughtimeCollector{stats: stats})
}

// RoughtimeSource is the node's time as Roughtime serves it: the clock
// now, with the bound the node publishes (NTP's root dispersion and the
// attestations' error bound, never a smaller one), and ok only while the
// node is servable, so that nothing is served unsynchronized.
func RoughtimeSource(clk clock.Clock, ts TimingSource) roughtime.TimeSource {
	return roughtimeSource{clk: clk, ts: ts}
}

type roughtimeSource struct {
	clk clock.Clock
	ts  TimingSource
}

func (s roughtimeSource) Now() (time.Time, time.Duration, bool) {
	st := s.ts.Status()
	now := s.clk.Now()
	if !servable(s.ts, st, now) {
		return now, 0, false
	}
	return now, publishedBound(s.ts, st, now), true
}

var (
	descNTSSess = prometheus.NewDesc("timenode_nts_ke_sessions_total", "NTS-KE connections by outcome.", []string{"result"}, nil)
	descNTSReq  = prometheus.NewDesc("timenode_nts_requests_total", "NTS-protected NTP requests by outcome: answered, or NAKed for a bad cookie, authenticator or field.", []string{"result"}, nil)
	descNTSCook = prometheus.NewDesc("timenode_nts_cookies_issued_total", "NTS cookies handed out, in KE responses and NTP replies.", nil, nil)
	descNTSRot  = prometheus.NewDesc("timenode_nts_key_rotations_total", "NTS cookie master key rotations.", nil, nil)
)

type ntsCollector struct{ stats func() nts.Stats }

func (c *ntsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNTSSess, descNTSReq, descNTSCook, descNTSRot} {
		ch <- d
	}
}

func (c *ntsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, r := range []struct {
		name string
		v    uint64
	}{{"cookies", s.KEResponses}, {"no_common_algorithm", s.KENoCommon}, {"error", s.KEErrors},
		{"aborted", s.KEAborted}, {"handshake_failed", s.HandshakeFailures}, {"rejected_busy", s.Rejected}} {
		counter(descNTSSess, r.v, r.name)
	}
	for _, r := range []struct {
		name string
		v    uint64
	}{{"ok", s.NTPAuthenticated}, {"bad_cookie", s.NTPBadCookie}, {"bad_authenticator", s.NTPBadAuth}, {"malformed", s.NTPMalformed}} {
		counter(descNTSReq, r.v, r.name)
	}
	counter(descNTSCook, s.CookiesIssued)
	counter(descNTSRot, s.KeyRotations)
}

// RegisterNTS exports the NTS-KE server's and NTS processor's counters.
func (m *Metrics) RegisterNTS(stats func() nts.Stats) {
	m.reg.MustRegister(&ntsCollector{stats: stats})
}
