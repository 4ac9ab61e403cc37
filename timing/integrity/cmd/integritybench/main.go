// Command integritybench runs the GNSS integrity bench (issue 20): 24
// simulated hours of each clean scenario (false alarms), every capture in
// testdata/nmea through the receiver checks, and every modelled attack,
// and prints the tables of docs/INTEGRITY.md. With -doc it rewrites the
// part of that file between the integritybench markers.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aunsorm/timenode/timing/integrity"
	"github.com/aunsorm/timenode/timing/integrity/attacksim"
	"github.com/aunsorm/timenode/timing/integrity/internal/nmeareplay"
)

const (
	beginMark = "<!-- integritybench:begin -->"
	endMark   = "<!-- integritybench:end -->"
)

func main() {
	doc := flag.String("doc", "", "rewrite the bench section of this Markdown file")
	captures := flag.String("captures", "testdata/nmea", "directory of NMEA captures")
	hours := flag.Float64("hours", 24, "simulated hours per clean scenario")
	flag.Parse()

	var out bytes.Buffer
	start := time.Now() // only for the report's run time; nothing simulated reads it
	fmt.Fprintf(&out, "### False alarms: clean scenarios\n\n")
	var clean []attacksim.Result
	for _, s := range attacksim.CleanScenarios() {
		clean = append(clean, attacksim.Run(s, nil, time.Duration(*hours*float64(time.Hour)), 0))
	}
	attacksim.WriteCleanTable(&out, clean, *hours)

	fmt.Fprintf(&out, "\n### False alarms: real receiver captures (testdata/nmea)\n\n")
	if err := captureTable(&out, *captures); err != nil {
		fmt.Fprintln(os.Stderr, "integritybench:", err)
		os.Exit(1)
	}

	fmt.Fprintf(&out, "\n### Attacks (onset after 6 h of clean running, at most 30 h after)\n\n")
	attacks := attacksim.Attacks()
	var rs []attacksim.Result
	for _, s := range attacksim.Scenarios() {
		for i := range attacks {
			rs = append(rs, attacksim.Run(s, &attacks[i], 6*time.Hour, 30*time.Hour))
		}
	}
	attacksim.WriteAttackTable(&out, attacks, rs)
	fmt.Fprintf(&out, "\nAttacks modelled:\n\n")
	for _, a := range attacks {
		fmt.Fprintf(&out, "- **%s**: %s.\n", a.Name, a.What)
	}

	fmt.Print(out.String())
	fmt.Fprintf(os.Stderr, "integritybench: %.1f s\n", time.Since(start).Seconds())
	if *doc != "" {
		if err := rewrite(*doc, out.String()); err != nil {
			fmt.Fprintln(os.Stderr, "integritybench:", err)
			os.Exit(1)
		}
	}
}

func captureTable(out *bytes.Buffer, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no captures in %s", dir)
	}
	fmt.Fprintln(out, "| capture | epochs | alarms (reason: count) |")
	fmt.Fprintln(out, "| --- | --- | --- |")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		snaps := nmeareplay.Snapshots(data)
		d := integrity.NewReceiverDetector(integrity.ReceiverConfig{})
		n := map[string]int{}
		for _, s := range snaps {
			for _, e := range d.Observe(s) {
				n[e.Reason]++
			}
		}
		var parts []string
		for r, c := range n {
			parts = append(parts, fmt.Sprintf("%s: %d", r, c))
		}
		sort.Strings(parts)
		al := "none"
		if len(parts) > 0 {
			al = strings.Join(parts, ", ")
		}
		fmt.Fprintf(out, "| %s | %d | %s |\n", filepath.Base(f), len(snaps), al)
	}
	return nil
}

func rewrite(path, body string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		return fmt.Errorf("%s: markers %q … %q not found", path, beginMark, endMark)
	}
	s = s[:i+len(beginMark)] + "\n\n" + body + "\n" + s[j:]
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
