package apparmorlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// MetricDenials is the seed's name for the denial counter (SPEC.md §6).
const MetricDenials = "mtls_app_armor_denials_total"

var descDenials = prometheus.NewDesc(MetricDenials,
	"AppArmor DENIED records for timenode profiles, by profile and class (file_read, file_write, network_bind, network_connect, network_other, capability, ptrace, other).",
	[]string{"profile", "class"}, nil)

// ShippedProfiles are the profile names the kernel logs for the profiles
// in apparmor/; their series are exported at 0 so that increase() sees
// the first denial.
var ShippedProfiles = []string{"timenoded", "timenode-refresh"}

// Tally accumulates denial counts; it is a prometheus.Collector that
// exports them as mtls_app_armor_denials_total. Safe for concurrent use.
type Tally struct {
	mu     sync.Mutex
	counts map[ProfileClass]uint64
}

var _ prometheus.Collector = (*Tally)(nil)

// NewTally returns a Tally with a zero series for every class of every
// shipped profile.
func NewTally() *Tally {
	t := &Tally{counts: map[ProfileClass]uint64{}}
	for _, p := range ShippedProfiles {
		for _, c := range Classes() {
			t.counts[ProfileClass{p, c}] = 0
		}
	}
	return t
}

// Add counts the denials of a Summary.
func (t *Tally) Add(s Summary) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, n := range s.Counts {
		t.counts[k] += uint64(n)
	}
}

// Describe implements prometheus.Collector.
func (t *Tally) Describe(ch chan<- *prometheus.Desc) { ch <- descDenials }

// Collect implements prometheus.Collector.
func (t *Tally) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, n := range t.counts {
		ch <- prometheus.MustNewConstMetric(descDenials, prometheus.CounterValue, float64(n), k.Profile, string(k.Class))
	}
}

// WriteTextfile writes the tally in the text exposition format for
// node_exporter's textfile collector: to a hidden temporary file in the
// same directory, fsynced, then renamed, so node_exporter never reads
// half a file. path must end in ".prom".
func (t *Tally) WriteTextfile(path string) (err error) {
	if !strings.HasSuffix(path, ".prom") {
		return fmt.Errorf("apparmorlog: textfile %s: name must end in .prom", path)
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(t); err != nil {
		return fmt.Errorf("apparmorlog: textfile %s: %w", path, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("apparmorlog: textfile %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("apparmorlog: textfile %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(tmp, mf); err != nil {
			return fmt.Errorf("apparmorlog: textfile %s: %w", path, err)
		}
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("apparmorlog: textfile %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("apparmorlog: textfile %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("apparmorlog: textfile %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("apparmorlog: textfile %s: %w", path, err)
	}
	return nil
}
