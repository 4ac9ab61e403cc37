package netsvc

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/timing"
)

// Metrics holds the server's own counters and the collector that reads
// the timing status at scrape time. The domain packages know nothing of
// Prometheus.
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	attestations prometheus.Counter
	rotations    prometheus.Counter
	reloadFails  prometheus.Counter
	// admissionOnce registers the listeners' admission collector once.
	admissionOnce sync.Once
}

// Reloaded records a reload: swaps that changed the material count in
// mtls_rotation_events_total, refused ones in timenode_reload_failures_total.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.rotations.Inc()
	} else {
		m.reloadFails.Inc()
	}
}

// NewMetrics registers the server's metrics and a collector over the
// discipline in a new registry.
func NewMetrics(clk clock.Clock, ts TimingSource, rejected func(reason string) uint64) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "timenode_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"handler", "code"}),
		attestations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "timenode_attestations_total", Help: "Attestations signed and served.",
		}),
	}
	m.rotations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mtls_rotation_events_total", Help: "Reloads (SIGHUP) that swapped in new certificates or keys.",
	})
	m.reloadFails = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "timenode_reload_failures_total", Help: "Reloads refused because new material was invalid; the old material kept serving.",
	})
	reg.MustRegister(m.requests, m.attestations, m.rotations, m.reloadFails, &timingCollector{clk: clk, ts: ts, rejected: rejected})
	return m
}

// Registry is where other components register their collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the exposition. Listen recognises it among its
// listeners and exports their admission figures through m.
func (m *Metrics) Handler() http.Handler {
	return &metricsHandler{m: m, Handler: promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})}
}

// metricsHandler is the exposition handler, tagged with its Metrics.
type metricsHandler struct {
	http.Handler
	m *Metrics
}

func (m *Metrics) attested() {
	if m != nil {
		m.attestations.Inc()
	}
}

// instrument counts requests by route and code.
func (m *Metrics) instrument(mux http.Handler) http.Handler {
	if m == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		mux.ServeHTTP(rec, r)
		pattern := r.Pattern // set by the mux on the request it routed
		if pattern == "" {
			pattern = "other"
		}
		m.requests.WithLabelValues(pattern, strconv.Itoa(rec.code)).Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

var (
	descState = prometheus.NewDesc("timenode_clock_state", "1 for the discipline's current state, 0 for the others.", []string{"state"}, nil)
	descOff   = prometheus.NewDesc("timenode_clock_offset_seconds", "Last measured offset of the local clock from UTC (local minus UTC).", nil, nil)
	descBound = prometheus.NewDesc("timenode_clock_error_bound_seconds", "Published bound on the local clock's error now.", nil, nil)
	descJit   = prometheus.NewDesc("timenode_clock_jitter_seconds", "RMS of recent offsets.", nil, nil)
	descFreq  = prometheus.NewDesc("timenode_clock_frequency_ppb", "Frequency correction applied to the clock, parts per billion.", nil, nil)
	descStrat = prometheus.NewDesc("timenode_clock_stratum", "NTP stratum the node claims.", nil, nil)
	descSamp  = prometheus.NewDesc("timenode_timing_samples_total", "PPS edges labelled by NMEA and fed to the servo.", nil, nil)
	descSteps = prometheus.NewDesc("timenode_clock_steps_total", "Clock steps applied.", nil, nil)
	descRej   = prometheus.NewDesc("timenode_timing_rejected_total", "PPS/NMEA pairs refused, by reason.", []string{"reason"}, nil)
	descTAI   = prometheus.NewDesc("timenode_tai_offset_seconds", "TAI minus UTC from the leap second list (0 if unknown).", nil, nil)
	descLeap  = prometheus.NewDesc("timenode_leap_pending", "Leap second at the end of the current UTC day: 1 insert, -1 delete, 0 none.", nil, nil)
	descNDel  = prometheus.NewDesc("timenode_nmea_delay_seconds", "Learned delay of the receiver's NMEA after the PPS edge it names.", nil, nil)
	descNDelS = prometheus.NewDesc("timenode_nmea_delay_spread_seconds", "Standard deviation of that delay.", nil, nil)
	descSrc   = prometheus.NewDesc("timenode_time_source", "1 for the current source of time (gnss+pps, gnss-nmea-only), 0 for the other.", []string{"source"}, nil)
	descBSig  = prometheus.NewDesc("timenode_attestation_signatures_total", "Hybrid signatures made for nonce-bound attestations (one per batch).", nil, nil)
	descBReq  = prometheus.NewDesc("timenode_attestation_batched_requests_total", "Nonce-bound attestations served from batches; divided by signatures, the mean batch size.", nil, nil)
	descLeapX = prometheus.NewDesc("timenode_leap_list_expired", "1 when the leap second list is past its expiry.", nil, nil)
)

// timingCollector reads one status snapshot per scrape.
type timingCollector struct {
	clk      clock.Clock
	ts       TimingSource
	rejected func(string) uint64
}

func (c *timingCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descOff, descBound, descJit, descFreq, descStrat, descSamp, descSteps, descRej, descTAI, descLeap, descLeapX, descNDel, descNDelS, descSrc} {
		ch <- d
	}
}

func (c *timingCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.ts.Status()
	now := c.clk.Now()
	for _, s := range timing.States() {
		v := 0.0
		if s == st.State {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, s.String())
	}
	ch <- prometheus.MustNewConstMetric(descOff, prometheus.GaugeValue, st.Offset.Seconds())
	ch <- prometheus.MustNewConstMetric(descBound, prometheus.GaugeValue, publishedBound(c.ts, st, now).Seconds())
	ch <- prometheus.MustNewConstMetric(descJit, prometheus.GaugeValue, st.Jitter.Seconds())
	ch <- prometheus.MustNewConstMetric(descFreq, prometheus.GaugeValue, st.FrequencyPPB)
	ch <- prometheus.MustNewConstMetric(descStrat, prometheus.GaugeValue, float64(st.Stratum))
	ch <- prometheus.MustNewConstMetric(descSamp, prometheus.CounterValue, float64(st.Samples))
	ch <- prometheus.MustNewConstMetric(descSteps, prometheus.CounterValue, float64(st.Steps))
	ch <- prometheus.MustNewConstMetric(descTAI, prometheus.GaugeValue, float64(st.TAIOffset))
	ch <- prometheus.MustNewConstMetric(descNDel, prometheus.GaugeValue, st.NMEADelay.Seconds())
	ch <- prometheus.MustNewConstMetric(descNDelS, prometheus.GaugeValue, st.NMEADelaySigma.Seconds())
	for _, src := range []string{"gnss+pps", "gnss-nmea-only"} {
		v := 0.0
		if src == st.Source {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descSrc, prometheus.GaugeValue, v, src)
	}
	leapV, expired := 0.0, 0.0
	switch st.Leap {
	case clock.LeapInsert:
		leapV = 1
	case clock.LeapDelete:
		leapV = -1
	}
	if st.LeapListExpired {
		expired = 1
	}
	ch <- prometheus.MustNewConstMetric(descLeap, prometheus.GaugeValue, leapV)
	ch <- prometheus.MustNewConstMetric(descLeapX, prometheus.GaugeValue, expired)
	if c.rejected != nil {
		for _, r := range timing.RejectReasons() {
			ch <- prometheus.MustNewConstMetric(descRej, prometheus.CounterValue, float64(c.rejected(r)), r)
		}
	}
}

type batchCollector struct{ b *signer.Batcher }

func (c *batchCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBSig
	ch <- descBReq
}

func (c *batchCollector) Collect(ch chan<- prometheus.Metric) {
	sigs, reqs := c.b.BatchStats()
	ch <- prometheus.MustNewConstMetric(descBSig, prometheus.CounterValue, float64(sigs))
	ch <- prometheus.MustNewConstMetric(descBReq, prometheus.CounterValue, float64(reqs))
}

// RegisterBatcher exports how well signing is batched.
func (m *Metrics) RegisterBatcher(b *signer.Batcher) { m.reg.MustRegister(&batchCollector{b: b}) }

// RegisterBuildInfo exports timenode_build_info, 1 with the build's
// version, full commit and Go version as labels (Prometheus' usual way to
// expose a build; join on it to see which version a node runs).
func (m *Metrics) RegisterBuildInfo(version, commit, goVersion string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "timenode_build_info",
		Help:        "Always 1; the labels say which build of timenoded runs.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": goVersion},
	})
	g.Set(1)
	m.reg.MustRegister(g)
}
