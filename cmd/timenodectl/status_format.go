package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aunsorm/timenode/netsvc"
)

// writeStatus prints a report as `chronyc tracking` prints its own: one
// "Name : value" line per figure, then the receiver and a table of its
// constellations.
func writeStatus(w io.Writer, r *statusReport) {
	h, c := &r.Health, &r.Health.Clock
	line := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-16s: %s\n", name, fmt.Sprintf(format, args...))
	}
	health := h.Status
	if h.Reason != "" {
		health += " (" + h.Reason + ")"
	}
	line("Node", "%s  HTTP %d, %s", r.Node, r.HTTPStatus, health)
	state := c.State
	if c.StateSince != "" {
		state += " since " + c.StateSince + " (" + ago(r.At, c.StateSince) + ")"
	}
	line("State", "%s", state)
	line("Reason", "%s", orDash(c.Reason))
	line("Stratum", "%d", c.Stratum)
	line("Offset", "%s", signed(time.Duration(c.OffsetNs)))
	line("Frequency", "%+.3f ppb", c.FrequencyPPB)
	line("Jitter", "%v", time.Duration(c.JitterNs))
	line("Error bound", "%v", time.Duration(c.ErrorBoundNs))
	holdover := "-"
	if c.HoldoverSince != "" {
		holdover = c.HoldoverSince + " (" + ago(r.At, c.HoldoverSince) + ")"
	}
	line("Holdover since", "%s", holdover)
	line("Last pulse", "%s", ageMs(c.LastPulseAgeMs))
	line("Last fix", "%s", ageMs(c.LastFixAgeMs))
	line("Leap", "%s (TAI-UTC %d s)", c.Leap, c.TAIOffset)
	keys := fmt.Sprintf("%d key(s)", len(h.Signer.KeyIDs))
	if h.Signer.Development {
		keys += ", development"
	}
	line("Signer", "%s, %s", readyWord(h.Signer.Ready), keys)
	switch {
	case r.Served != nil:
		s := r.Served
		line("Served", "NTP %.1f/s, NTS %.1f/s, attestations %.1f/s, Roughtime %.1f/s (over %.1f s)",
			s.NTPPerSec, s.NTSPerSec, s.AttestPerSec, s.RoughtimePerSec, s.IntervalSecs)
	case r.MetricsError != "":
		line("Served", "unknown (%s)", r.MetricsError)
	}
	if len(r.CertDaysLeft) > 0 {
		names := make([]string, 0, len(r.CertDaysLeft))
		for n := range r.CertDaysLeft {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool { return r.CertDaysLeft[names[i]] < r.CertDaysLeft[names[j]] })
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %.1f", n, r.CertDaysLeft[n]))
		}
		line("Cert days left", "%s", strings.Join(parts, ", "))
	}
	writeIntegrity(r.At, h.Integrity, line)
	for _, warn := range c.Warnings {
		line("Warning", "%s", warn)
	}
	for _, svc := range h.Services {
		line("Service", "%s on %s, %s", svc.Name, svc.Addr, servingWord(svc.Serving))
	}
	writeReceiver(w, h.Receiver, line)
}

// writeIntegrity prints the GNSS integrity lines: the state and what it
// does to what is served, the reasons, and the node's move against the
// witnesses when they measured one.
func writeIntegrity(at time.Time, in *netsvc.HealthIntegrity, line func(name, format string, args ...any)) {
	if in == nil {
		line("Integrity", "off (no checks)")
		return
	}
	parts := []string{in.State + " since " + in.Since + " (" + ago(at, in.Since) + ")"}
	if !in.Enforced {
		parts = append(parts, "monitored, not enforced")
	} else {
		if !in.FollowingGNSS {
			parts = append(parts, "not following GNSS")
		}
		if in.BoundWideningNs > 0 {
			parts = append(parts, "bound widened by "+time.Duration(in.BoundWideningNs).String())
		}
	}
	if in.ResidualErrorNs > 0 {
		parts = append(parts, "residual "+time.Duration(in.ResidualErrorNs).String())
	}
	line("Integrity", "%s", strings.Join(parts, ", "))
	if len(in.Reasons) > 0 {
		line("Reasons", "%s", strings.Join(in.Reasons, ", "))
	}
	if w := in.WitnessMove; w != nil {
		floor := "no floor"
		if w.FloorNs > 0 {
			floor = "floor " + time.Duration(w.FloorNs).String()
		}
		line("Witness move", "%s ± %v (%d witnesses, %+.1f ns/s), %s", signed(time.Duration(w.MoveNs)),
			time.Duration(w.StdErrNs), w.Witnesses, w.RateNsPerS, floor)
	}
	if len(in.Witnesses) > 0 {
		var down []string
		for _, w := range in.Witnesses {
			switch {
			case w.Up:
			case w.Failure != "":
				down = append(down, w.Name+" ("+w.Failure+")")
			default:
				down = append(down, w.Name)
			}
		}
		reach := fmt.Sprintf("%d of %d answering", len(in.Witnesses)-len(down), len(in.Witnesses))
		if len(down) > 0 {
			reach += "; not answering: " + strings.Join(down, ", ")
		}
		line("Witnesses", "%s", reach)
	}
}

// writeReceiver prints the receiver section.
func writeReceiver(w io.Writer, rx *netsvc.HealthReceiver, line func(string, string, ...any)) {
	fmt.Fprintln(w, "\nReceiver")
	if rx == nil {
		line("View", "not reported by this node")
		return
	}
	line("Line", "%s", rx.Line)
	fix := rx.FixType
	if rx.FixQuality != nil {
		fix += fmt.Sprintf(", quality %d", *rx.FixQuality)
	}
	if rx.SatellitesUsed != nil {
		fix += fmt.Sprintf(", %d satellites in the fix", *rx.SatellitesUsed)
	}
	line("Fix", "%s", fix)
	line("DOP", "P %s  H %s  V %s", dop(rx.PDOP), dop(rx.HDOP), dop(rx.VDOP))
	if rx.AltitudeM != nil {
		line("Altitude", "%.1f m", *rx.AltitudeM)
	}
	antenna := rx.Antenna
	if rx.AntennaReported != "" {
		antenna += " (reported " + rx.AntennaReported + ")"
	}
	line("Antenna", "%s", antenna)
	if rx.Updated == "" {
		line("Satellites", "none reported recently")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "Constellation\tIn view\tTracked\tUsed\tCN0 mean\tCN0 max\t")
	var view, tracked, used int
	for _, c := range rx.Constellations {
		view, tracked, used = view+c.InView, tracked+c.Tracked, used+c.Used
		mean, maxCN0 := "-", "-"
		if c.Tracked > 0 {
			mean, maxCN0 = fmt.Sprintf("%.1f", c.CN0MeanDBHz), fmt.Sprintf("%.0f", c.CN0MaxDBHz)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t\n", c.Name, c.InView, c.Tracked, c.Used, mean, maxCN0)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t\t\t\n", view, tracked, used)
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// signed prints a duration with its sign, as an offset reads best.
func signed(d time.Duration) string {
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

// ageMs prints an age in milliseconds from /health, "never" when null.
func ageMs(ms *int64) string {
	if ms == nil {
		return "never"
	}
	return (time.Duration(*ms) * time.Millisecond).String() + " ago"
}

// ago prints how long before at the RFC 3339 time ts was.
func ago(at time.Time, ts string) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return "?"
	}
	return max(at.Sub(t), 0).Round(time.Second).String() + " ago"
}

func dop(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *v)
}

func readyWord(ok bool) string {
	if ok {
		return "ready"
	}
	return "NOT READY"
}

func servingWord(ok bool) string {
	if ok {
		return "serving"
	}
	return "not serving"
}
