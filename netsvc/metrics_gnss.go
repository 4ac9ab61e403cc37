package netsvc

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aunsorm/timenode/hw/gnss"
)

var (
	descSats = prometheus.NewDesc("timenode_gnss_satellites",
		"Satellites the receiver reports, by constellation and state: in_view (GSV), tracked (in view with a CN0), used (GSA). Every constellation is exported, 0 when none.",
		[]string{"constellation", "state"}, nil)
	descCN0 = prometheus.NewDesc("timenode_gnss_cn0_dbhz",
		"Carrier-to-noise density of the tracked satellites, dB-Hz, by constellation and statistic (mean, max); absent for a constellation with none tracked.",
		[]string{"constellation", "stat"}, nil)
	descFixType = prometheus.NewDesc("timenode_gnss_fix_type",
		"Fix type from GSA: 0 unknown (no fresh GSA), 1 none, 2 2D, 3 3D.", nil, nil)
	descFixQual = prometheus.NewDesc("timenode_gnss_fix_quality",
		"Fix quality from GGA (0 none, 1 GPS, 2 DGPS, 4 RTK, ...); absent when unknown.", nil, nil)
	descDOP = prometheus.NewDesc("timenode_gnss_dop",
		"Dilution of precision from GSA (HDOP from GGA without one), by kind (pdop, hdop, vdop); absent when unknown.", []string{"kind"}, nil)
	descAntenna = prometheus.NewDesc("timenode_gnss_antenna_status",
		"1 for the antenna supervisor's last report (ok, open, short; unknown if the receiver never reported), 0 for the others.", []string{"status"}, nil)
	descGSVGroups = prometheus.NewDesc("timenode_gnss_gsv_groups_total",
		"GSV groups assembled whole (complete) or abandoned for a missing, reordered or late part (broken).", []string{"result"}, nil)
	descMalformed = prometheus.NewDesc("timenode_gnss_malformed_total",
		"Decoded GSV, GSA and GGA sentences with impossible values, ignored by the receiver view.", []string{"sentence"}, nil)
)

// skyCollector exports the receiver's view at scrape time.
type skyCollector struct{ sky func() gnss.SkyView }

func (c *skyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSats, descCN0, descFixType, descFixQual, descDOP, descAntenna, descGSVGroups, descMalformed} {
		ch <- d
	}
}

func (c *skyCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.sky()
	gauge := func(d *prometheus.Desc, x float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, labels...)
	}
	for _, name := range gnss.Constellations() {
		cv := v.Constellation(name)
		gauge(descSats, float64(cv.InView), name, "in_view")
		gauge(descSats, float64(cv.Tracked), name, "tracked")
		gauge(descSats, float64(cv.Used), name, "used")
		if cv.Tracked > 0 {
			gauge(descCN0, cv.CN0Mean, name, "mean")
			gauge(descCN0, cv.CN0Max, name, "max")
		}
	}
	gauge(descFixType, float64(v.FixType))
	if v.FixQuality >= 0 {
		gauge(descFixQual, float64(v.FixQuality))
	}
	for _, d := range []struct {
		kind string
		v    float64
	}{{"pdop", v.PDOP}, {"hdop", v.HDOP}, {"vdop", v.VDOP}} {
		if d.v > 0 {
			gauge(descDOP, d.v, d.kind)
		}
	}
	for _, s := range gnss.AntennaStates() {
		x := 0.0
		if s == v.Antenna.String() {
			x = 1
		}
		gauge(descAntenna, x, s)
	}
	ch <- prometheus.MustNewConstMetric(descGSVGroups, prometheus.CounterValue, float64(v.Counts.GSVGroups), "complete")
	ch <- prometheus.MustNewConstMetric(descGSVGroups, prometheus.CounterValue, float64(v.Counts.GSVBroken), "broken")
	for _, typ := range []string{"GSV", "GSA", "GGA"} {
		ch <- prometheus.MustNewConstMetric(descMalformed, prometheus.CounterValue, float64(v.Counts.Malformed[typ]), typ)
	}
}
