package attacksim

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// FormatDuration prints a detection time, "—" for never.
func FormatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%.1f min", d.Minutes())
	}
	return fmt.Sprintf("%.2f h", d.Hours())
}

// FormatNs prints a time error.
func FormatNs(ns float64) string {
	switch {
	case ns == 0:
		return "0"
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.3f ms", ns/1e6)
}

// FormatCoverage prints the share of served seconds whose bound covered
// the true error, with the uncovered count.
func FormatCoverage(r Result) string {
	if r.Served == 0 {
		return "not served"
	}
	if r.Uncovered > 0 && r.Attack != "" {
		return fmt.Sprintf("%.2f %% (%d of %d s uncovered, %d of them before detection)", 100*r.Coverage(), r.Uncovered, r.Served, r.UncoveredBefore)
	}
	return fmt.Sprintf("%.2f %% (%d of %d s uncovered)", 100*r.Coverage(), r.Uncovered, r.Served)
}

// WriteAttackTable writes one Markdown row per result: detection, then
// what the node served from the onset to the end of the run.
func WriteAttackTable(w io.Writer, attacks []Attack, rs []Result) {
	fmt.Fprintln(w, "| scenario | attack | first evidence | left trusted after | untrusted after | max true error before leaving trusted | … before untrusted | final state | bound covered the error (served s) | max error served | max excess over bound |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for i, r := range rs {
		first := r.First
		if first == "" {
			first = "none"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Scenario, attacks[i%len(attacks)].Name, first,
			FormatDuration(r.Detected), FormatDuration(r.Untrusted), FormatNs(r.MaxErrBeforeDetect), FormatNs(r.MaxErrBeforeUntrusted), r.Final,
			FormatCoverage(r), FormatNs(r.MaxErrServed), FormatNs(r.MaxExcess))
	}
}

// WriteCleanTable writes the false-alarm runs: transitions and the
// evidence counted (info-level evidence included), per scenario.
func WriteCleanTable(w io.Writer, rs []Result, hours float64) {
	fmt.Fprintln(w, "| scenario | simulated | transitions (false alarms) | evidence counted | bound covered the error (served s) | max error served |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
	for _, r := range rs {
		var parts []string
		for k, n := range r.Counts {
			if n > 0 {
				parts = append(parts, fmt.Sprintf("%s/%s %d", k.Detector, k.Reason, n))
			}
		}
		sort.Strings(parts)
		ev := "none"
		if len(parts) > 0 {
			ev = fmt.Sprint(parts)
		}
		fmt.Fprintf(w, "| %s | %.0f h | %d | %s | %s | %s |\n", r.Scenario, hours, r.FalseAlarms, ev, FormatCoverage(r), FormatNs(r.MaxErrServed))
	}
}
