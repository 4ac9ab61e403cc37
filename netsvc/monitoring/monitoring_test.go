package monitoring

import (
	"slices"
	"strings"
	"testing"
)

func TestMetricNames(t *testing.T) {
	tests := []struct {
		name, expr string
		want       []string
	}{
		{"plain", "ntp_attestation_age_ms > 30000", []string{"ntp_attestation_age_ms"}},
		{"matchers", `timenode_clock_state{state="HOLDOVER", instance=~"a|b"} == 1`, []string{"timenode_clock_state"}},
		{"function and range", "increase(timenode_reload_failures_total[15m]) > 0", []string{"timenode_reload_failures_total"}},
		{"grouping", `sum by (instance, reason) (rate(timenode_timing_rejected_total{x="}"}[5m]))`, []string{"timenode_timing_rejected_total"}},
		{"binary and on", "a_total / on (instance) group_left(cert) b_seconds and c unless d offset 5m", []string{"a_total", "b_seconds", "c", "d"}},
		{"numbers", "x > 1e3 and y < 0x1f and z != 1.5", []string{"x", "y", "z"}},
		{"duplicates once", "m + m", []string{"m"}},
		{"strings ignored", `label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{"recording rule names with colons", "job:requests:rate5m > 1", []string{"job:requests:rate5m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MetricNames(tt.expr); !slices.Equal(got, tt.want) {
				t.Errorf("MetricNames(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestParseMetricsList(t *testing.T) {
	tests := []struct {
		name, text string
		want       []Metric
		err        string
	}{
		{"ok", "# c\n\na daemon\nb sidecar pending\nc textfile\n", []Metric{{"a", Daemon, false}, {"b", Sidecar, true}, {"c", Textfile, false}}, ""},
		{"unknown source", "a exporter\n", nil, "unknown source"},
		{"unknown mark", "a daemon soon\n", nil, "unknown mark"},
		{"duplicate", "a daemon\na sidecar\n", nil, "duplicate"},
		{"missing source", "a\n", nil, "want NAME SOURCE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMetricsList(tt.text)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
