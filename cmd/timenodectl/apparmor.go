package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aunsorm/timenode/netsvc/apparmorlog"
)

func init() {
	register("apparmor", "classify AppArmor denials of timenode's profiles", apparmorCmd)
}

const apparmorUsage = "usage: timenodectl apparmor denials [--since RFC3339|DURATION] [--profile NAME[,NAME]] [--textfile PATH.prom] [FILE|-]"

// apparmorCmd exits 0 when no denial was found, 1 when there were
// denials (so a timer or a smoke test can act on it), 2 on usage or I/O
// errors.
func apparmorCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "denials" {
		fmt.Fprintln(stderr, apparmorUsage)
		return 2
	}
	fs := flag.NewFlagSet("apparmor denials", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.String("since", "", "skip records older than this: an RFC 3339 time or a duration back from now (1h)")
	profiles := fs.String("profile", "", "comma-separated profile names (default: "+strings.Join(apparmorlog.DefaultProfiles, ",")+")")
	textfile := fs.String("textfile", "", "also write mtls_app_armor_denials_total to this node_exporter textfile (.prom), atomically")
	// Accept the file before or after the flags.
	rest := args[1:]
	var file string
	if len(rest) > 0 && (rest[0] == "-" || !strings.HasPrefix(rest[0], "-")) {
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintln(stderr, apparmorUsage)
		return 2
	}
	filter := apparmorlog.Filter{}
	if *profiles != "" {
		filter.Profiles = strings.Split(*profiles, ",")
	}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl apparmor denials: --since: %v\n", err)
			return 2
		}
		filter.Since = t
	}
	in, name := io.Reader(os.Stdin), "stdin"
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl: apparmor denials: %v\n", err)
			return 2
		}
		defer f.Close()
		in, name = f, file
	}
	ds, err := apparmorlog.Read(in, filter)
	if err != nil {
		fmt.Fprintf(stderr, "timenodectl: %s: %v\n", name, err)
		return 2
	}
	s := apparmorlog.Summarize(ds)
	if err := s.WriteText(stdout); err != nil {
		fmt.Fprintf(stderr, "timenodectl: %v\n", err)
		return 2
	}
	if *textfile != "" {
		t := apparmorlog.NewTally()
		t.Add(s)
		if err := t.WriteTextfile(*textfile); err != nil {
			fmt.Fprintf(stderr, "timenodectl: %v\n", err)
			return 2
		}
	}
	if s.Total > 0 {
		return 1
	}
	return 0
}

// parseSince reads an absolute RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a positive duration", s)
	}
	return now.Add(-d), nil
}
