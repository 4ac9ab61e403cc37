// Package textfile exports metrics that other programs write as
// Prometheus text files, as node_exporter's textfile collector does, from
// the daemon's own /metrics. On the appliance it carries the AppArmor
// denial count (mtls_app_armor_denials_total), which the confined daemon
// must not compute itself: counting needs the kernel log.
//
// Only metric names with an allowed prefix are exported, so a file cannot
// forge the daemon's own metrics; each file is read whole at every
// scrape, bounded in size, and never followed through a symlink.
package textfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MaxFileSize bounds one file: a textfile holds a handful of samples.
const MaxFileSize = 64 << 10

// Collector reads Dir/*.prom at every scrape.
type Collector struct {
	Dir      string
	Prefixes []string // metric name prefixes that may be exported
	errDesc  *prometheus.Desc
}

// New returns a collector over dir exporting the metrics whose names
// start with one of prefixes.
func New(dir string, prefixes ...string) *Collector {
	return &Collector{Dir: dir, Prefixes: prefixes,
		errDesc: prometheus.NewDesc("timenode_textfile_scrape_error",
			"1 if a textfile could not be read or held a refused metric at this scrape, else 0.", []string{"file"}, nil)}
}

// Describe sends nothing: the exported metrics are known only at scrape
// time, so the collector is unchecked.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect exports every allowed metric of every file, and one error gauge
// per file.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	files, _ := filepath.Glob(filepath.Join(c.Dir, "*.prom"))
	sort.Strings(files)
	for _, f := range files {
		ms, err := c.read(f)
		bad := 0.0
		if err != nil {
			bad = 1
		}
		ch <- prometheus.MustNewConstMetric(c.errDesc, prometheus.GaugeValue, bad, filepath.Base(f))
		for _, m := range ms {
			ch <- m
		}
	}
}

// read parses one file and returns its allowed metrics; a refused name
// or a parse error drops the whole file, since a file half-written or
// tampered with says nothing reliable.
func (c *Collector) read(path string) ([]prometheus.Metric, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	// Classic metric names only: what node_exporter's textfiles hold.
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []prometheus.Metric
	for _, n := range names {
		if !c.allowed(n) {
			return nil, fmt.Errorf("%s: metric %s is not one this collector may export", path, n)
		}
		ms, err := constMetrics(families[n])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, ms...)
	}
	return out, nil
}

func (c *Collector) allowed(name string) bool {
	for _, p := range c.Prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// readBounded reads a regular file, not through a symlink, of at most
// MaxFileSize bytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxFileSize)
	}
	return b, nil
}

// constMetrics turns a parsed family into const metrics. Counters, gauges
// and untyped samples are what a textfile holds; summaries and histograms
// are refused rather than half-exported.
func constMetrics(mf *dto.MetricFamily) ([]prometheus.Metric, error) {
	var out []prometheus.Metric
	for _, m := range mf.GetMetric() {
		labels := make([]string, 0, len(m.GetLabel()))
		values := make([]string, 0, len(m.GetLabel()))
		for _, l := range m.GetLabel() {
			if !model.LabelName(l.GetName()).IsValid() {
				return nil, fmt.Errorf("metric %s: bad label %q", mf.GetName(), l.GetName())
			}
			labels = append(labels, l.GetName())
			values = append(values, l.GetValue())
		}
		desc := prometheus.NewDesc(mf.GetName(), mf.GetHelp(), labels, nil)
		var (
			pm  prometheus.Metric
			err error
		)
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			pm, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, m.GetCounter().GetValue(), values...)
		case dto.MetricType_GAUGE:
			pm, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, m.GetGauge().GetValue(), values...)
		case dto.MetricType_UNTYPED:
			pm, err = prometheus.NewConstMetric(desc, prometheus.UntypedValue, m.GetUntyped().GetValue(), values...)
		default:
			err = errors.New("only counters, gauges and untyped samples are exported")
		}
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", mf.GetName(), err)
		}
		out = append(out, pm)
	}
	return out, nil
}
