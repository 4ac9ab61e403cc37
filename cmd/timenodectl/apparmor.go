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
	g := registerGroup("apparmor", "classify AppArmor denials of timenode's profiles", 8)
	g.addLeaf("denials", leaf{use: "[FILE|-]", args: optOneArg,
		summary: "classify the denials in a kernel log (FILE, or - for standard input)",
		help: `Reads audit records, e.g. journalctl -k -o cat | timenodectl apparmor denials -
Exit 0 when no denial was found, 1 when there were denials (so a timer or a
smoke test can act on it), 2 on usage or I/O errors.`,
		flags: apparmorDenials})
}

// stdinIsTerminal reports whether standard input is a terminal: reading
// a log from it would wait silently for typing that never comes.
var stdinIsTerminal = func() bool {
	fi, err := os.Stdin.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func apparmorDenials(fs *flag.FlagSet) runFunc {
	since := fs.String("since", "", "skip records older than this: an RFC 3339 time or a duration back from now (1h)")
	profiles := fs.String("profile", "", "comma-separated profile names (default: "+strings.Join(apparmorlog.DefaultProfiles, ",")+")")
	textfile := fs.String("textfile", "", "also write mtls_app_armor_denials_total to this node_exporter textfile (.prom), atomically")
	return func(args []string, stdout, stderr io.Writer) int {
		const prog = "timenodectl apparmor denials"
		filter := apparmorlog.Filter{}
		if *profiles != "" {
			filter.Profiles = strings.Split(*profiles, ",")
		}
		if *since != "" {
			t, err := parseSince(*since, time.Now())
			if err != nil {
				fmt.Fprintf(stderr, "%s: --since: %v\n", prog, err)
				return 2
			}
			filter.Since = t
		}
		file := ""
		if len(args) == 1 {
			file = args[0]
		}
		in, name := io.Reader(os.Stdin), "standard input"
		switch {
		case file == "" && stdinIsTerminal():
			fmt.Fprintf(stderr, "%s: no input: give a FILE, or - and pipe the kernel log in (journalctl -k -o cat | %s -)\n", prog, prog)
			return 2
		case file != "" && file != "-":
			f, err := os.Open(file)
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", prog, err)
				return 2
			}
			defer f.Close()
			in, name = f, file
		}
		ds, err := apparmorlog.Read(in, filter)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %s: %v\n", prog, name, err)
			return 2
		}
		s := apparmorlog.Summarize(ds)
		if err := s.WriteText(stdout); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 2
		}
		if *textfile != "" {
			t := apparmorlog.NewTally()
			t.Add(s)
			if err := t.WriteTextfile(*textfile); err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", prog, err)
				return 2
			}
		}
		if s.Total > 0 {
			return 1
		}
		return 0
	}
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
