package netsvc

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aunsorm/timenode/netsvc/ntp"
)

var (
	descNTPReq   = prometheus.NewDesc("timenode_ntp_requests_total", "NTP packets received.", nil, nil)
	descNTPRep   = prometheus.NewDesc("timenode_ntp_replies_total", "NTP replies sent (excluding KoD).", nil, nil)
	descNTPUns   = prometheus.NewDesc("timenode_ntp_unsynchronized_replies_total", "NTP replies sent with leap indicator 3 (clock not servable).", nil, nil)
	descNTPKoD   = prometheus.NewDesc("timenode_ntp_kod_sent_total", "NTP KoD RATE replies sent.", nil, nil)
	descNTPDrops = prometheus.NewDesc("timenode_ntp_dropped_total", "NTP packets dropped without reply, by reason.", []string{"reason"}, nil)
	descNTPNoTS  = prometheus.NewDesc("timenode_ntp_no_kernel_timestamp_total", "NTP packets stamped in user space because the kernel gave no receive timestamp.", nil, nil)
)

type ntpCollector struct{ stats func() ntp.Stats }

func (c *ntpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNTPReq, descNTPRep, descNTPUns, descNTPKoD, descNTPDrops, descNTPNoTS} {
		ch <- d
	}
}

func (c *ntpCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descNTPReq, s.Requests)
	counter(descNTPRep, s.Replies)
	counter(descNTPUns, s.Unsynchronized)
	counter(descNTPKoD, s.KoDSent)
	counter(descNTPNoTS, s.NoKernelTimestamp)
	for r := ntp.DropReason(0); r < ntp.NumDropReasons; r++ {
		counter(descNTPDrops, s.Drops[r], r.String())
	}
}

// RegisterNTP exports the NTP server's counters; per-second rates are
// rate() over them.
func (m *Metrics) RegisterNTP(stats func() ntp.Stats) {
	m.reg.MustRegister(&ntpCollector{stats: stats})
}
