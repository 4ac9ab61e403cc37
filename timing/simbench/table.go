package simbench

import (
	"fmt"
	"io"
	"math"
)

// WriteTable writes one scenario's results as a Markdown table.
func WriteTable(w io.Writer, sc Scenario, results []Result) {
	fmt.Fprintf(w, "### (%s) %s\n\n", sc.Name, sc.Description)
	fmt.Fprintln(w, "| servo | lock | re-lock | RMS | p99 | holdover 10 min | holdover 1 h | coverage | median bound/err | rejected / spikes missed |")
	fmt.Fprintln(w, "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %.3f %% | %.1f | %d/%d |\n",
			r.Kind, secs(r.LockS), secs(r.RelockS), ns(r.RMSNs), ns(r.P99Ns),
			ns(r.Hold10mNs), ns(r.Hold1hNs), 100*r.Coverage, r.MedianRate, r.Rejected, r.Missed)
	}
	fmt.Fprintln(w)
}

func secs(s int) string {
	if s < 0 {
		return "—"
	}
	return fmt.Sprintf("%d s", s)
}

// ns formats a duration in ns with a readable unit.
func ns(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "—"
	case a >= 1e6:
		return fmt.Sprintf("%.2f ms", v/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.2f µs", v/1e3)
	default:
		return fmt.Sprintf("%.0f ns", v)
	}
}
