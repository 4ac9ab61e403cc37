package netsvc

import (
	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/timing/integrity"
	"github.com/prometheus/client_golang/prometheus"
)

// Integrity is what the integrity metrics read: the published status, the
// evidence counted per detector and reason, and the witnesses' latest
// measurements (nil without witnesses).
type Integrity struct {
	Status    func() *integrity.Status
	Counts    func() map[integrity.Key]uint64
	Witnesses func() []integrity.Measurement
	// Reach is every configured witness with whether its latest query
	// was answered (nil: none exported).
	Reach func() []WitnessReach
}

var (
	descIntState = prometheus.NewDesc("timenode_integrity_state",
		"1 for the GNSS integrity state (trusted, suspect, untrusted), 0 for the others.", []string{"state"}, nil)
	descIntEnforced = prometheus.NewDesc("timenode_integrity_enforced",
		"1 when the integrity state acts (gates GNSS, widens the bound), 0 when it is only monitored.", nil, nil)
	descIntFollow = prometheus.NewDesc("timenode_integrity_following_gnss",
		"1 while the discipline is fed by GNSS, 0 while an untrusted GNSS is withheld from it.", nil, nil)
	descIntWiden = prometheus.NewDesc("timenode_integrity_bound_widening_seconds",
		"What the published error bound carries on top of the computed one (GNSS suspect).", nil, nil)
	descIntEvidence = prometheus.NewDesc("timenode_integrity_evidence_total",
		"Evidence reported by the integrity detectors, by detector and reason (one per input showing the condition).", []string{"detector", "reason"}, nil)
	descIntLevel = prometheus.NewDesc("timenode_integrity_detector_level",
		"Strongest evidence a detector has active: 0 none, 1 info, 2 suspect, 3 untrusted.", []string{"detector"}, nil)
	descWitOffset = prometheus.NewDesc("timenode_integrity_witness_offset_seconds",
		"Witness time minus node time at the witness's latest answer.", []string{"witness"}, nil)
	descWitUnc = prometheus.NewDesc("timenode_integrity_witness_uncertainty_seconds",
		"Uncertainty of that offset: the witness's radius plus half the round trip.", []string{"witness"}, nil)
	descWitAge = prometheus.NewDesc("timenode_integrity_witness_age_seconds",
		"Time since the witness's latest answer.", []string{"witness"}, nil)
	descWitUp = prometheus.NewDesc("timenode_integrity_witness_up",
		"1 when the witness answered its latest query, 0 when that query failed or none has been answered yet; one series per configured witness.", []string{"witness"}, nil)
	descWitMove = prometheus.NewDesc("timenode_integrity_witness_move_seconds",
		"How far the node's clock moved against the witnesses over their history (up to 4 h; positive: ahead), the median witness's; absent without two witnesses measured over 20 min.", nil, nil)
	descWitMoveErr = prometheus.NewDesc("timenode_integrity_witness_move_stderr_seconds",
		"Standard error of timenode_integrity_witness_move_seconds.", nil, nil)
)

// detectors are the integrity detectors, in metric order.
var detectors = []string{integrity.DetectorPPS, integrity.DetectorPosition, integrity.DetectorReceiver, integrity.DetectorWitness}

// RegisterIntegrity exports the GNSS integrity state, evidence and
// witnesses; clk is the node's clock, for the witnesses' ages.
func (m *Metrics) RegisterIntegrity(clk clock.Clock, src Integrity) {
	m.reg.MustRegister(&integrityCollector{clk: clk, src: src})
}

type integrityCollector struct {
	clk clock.Clock
	src Integrity
}

func (c *integrityCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descIntState, descIntEnforced, descIntFollow, descIntWiden, descIntEvidence, descIntLevel, descWitOffset, descWitUnc, descWitAge, descWitUp, descWitMove, descWitMoveErr} {
		ch <- d
	}
}

func (c *integrityCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	if st == nil {
		st = &integrity.Status{}
	}
	for _, s := range []integrity.State{integrity.StateTrusted, integrity.StateSuspect, integrity.StateUntrusted} {
		ch <- prometheus.MustNewConstMetric(descIntState, prometheus.GaugeValue, b2f(s == st.State), s.String())
	}
	ch <- prometheus.MustNewConstMetric(descIntEnforced, prometheus.GaugeValue, b2f(st.Enforced))
	ch <- prometheus.MustNewConstMetric(descIntFollow, prometheus.GaugeValue, b2f(st.FollowGNSS()))
	ch <- prometheus.MustNewConstMetric(descIntWiden, prometheus.GaugeValue, st.Bound(0).Seconds())
	level := map[string]float64{}
	for _, e := range st.Active {
		level[e.Detector] = max(level[e.Detector], float64(e.Level)+1)
	}
	for _, d := range detectors {
		ch <- prometheus.MustNewConstMetric(descIntLevel, prometheus.GaugeValue, level[d], d)
	}
	if d := st.Departure; d != nil {
		ch <- prometheus.MustNewConstMetric(descWitMove, prometheus.GaugeValue, d.Move.Seconds())
		ch <- prometheus.MustNewConstMetric(descWitMoveErr, prometheus.GaugeValue, d.StdErr.Seconds())
	}
	if c.src.Counts != nil {
		for k, n := range c.src.Counts() {
			ch <- prometheus.MustNewConstMetric(descIntEvidence, prometheus.CounterValue, float64(n), k.Detector, k.Reason)
		}
	}
	if c.src.Witnesses != nil {
		now := c.clk.Now()
		for _, w := range c.src.Witnesses() {
			ch <- prometheus.MustNewConstMetric(descWitOffset, prometheus.GaugeValue, w.Offset.Seconds(), w.Witness)
			ch <- prometheus.MustNewConstMetric(descWitUnc, prometheus.GaugeValue, w.Uncertainty.Seconds(), w.Witness)
			ch <- prometheus.MustNewConstMetric(descWitAge, prometheus.GaugeValue, max(now.Sub(w.At), 0).Seconds(), w.Witness)
		}
	}
	if c.src.Reach != nil {
		for _, w := range c.src.Reach() {
			ch <- prometheus.MustNewConstMetric(descWitUp, prometheus.GaugeValue, b2f(w.Up), w.Name)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
