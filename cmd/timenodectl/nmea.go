package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pty"
)

func init() {
	g := registerGroup("nmea", "replay NMEA captures into a pty, count their sentences", 8)
	g.addLeaf("replay", leaf{use: "FILE", args: oneArg,
		summary: "replay a capture into a new pty, paced one burst per receiver second",
		help: `Prints the pty's slave path (and symlinks it at --link); point the
daemon's gnss device at it. --rate N divides the pacing by N; --rate 0
writes as fast as the pty accepts. Comment lines are skipped.`,
		flags: nmeaReplay})
	g.addLeaf("stats", leaf{use: "FILE...", args: someArgs,
		summary: "count each capture's sentences by the rules of testdata/nmea/README.md",
		flags:   nmeaStats})
}

func nmeaReplay(fs *flag.FlagSet) runFunc {
	rate := fs.Float64("rate", 1, "speed-up factor; 0 writes as fast as possible")
	link := fs.String("link", "", "also make this `PATH` a symlink to the pty slave")
	loop := fs.Bool("loop", false, "replay the capture again and again until interrupted")
	return func(args []string, stdout, stderr io.Writer) int {
		file := args[0]
		if *rate < 0 {
			fmt.Fprintln(stderr, "timenodectl nmea replay: --rate must not be negative")
			return 2
		}
		capture, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl: nmea replay: %v\n", err)
			return 1
		}
		bursts := gnss.Bursts(gnss.StripComments(capture))

		master, slave, err := pty.Open()
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl: %v\n", err)
			return 1
		}
		defer master.Close()
		if *link != "" {
			if err := replaceSymlink(slave, *link); err != nil {
				fmt.Fprintf(stderr, "timenodectl: %v\n", err)
				return 1
			}
			defer os.Remove(*link)
		}
		fmt.Fprintln(stdout, slave)

		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		for {
			err := gnss.Replay(ctx, master, bursts, *rate)
			if ctx.Err() != nil {
				return 0
			}
			if err != nil {
				fmt.Fprintf(stderr, "timenodectl: nmea replay %s: %v\n", file, err)
				return 1
			}
			if !*loop {
				// Give the reader time to drain the pty before it is closed.
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
				return 0
			}
		}
	}
}

// replaceSymlink points link at target, replacing an existing link.
func replaceSymlink(target, link string) error {
	tmp := filepath.Join(filepath.Dir(link), fmt.Sprintf(".%s.%d", filepath.Base(link), os.Getpid()))
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("nmea replay: link %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("nmea replay: link %s: %w", link, err)
	}
	return nil
}

// nmeaFigures is the machine-readable output of nmea stats, named as in
// testdata/nmea/expected.json.
type nmeaFigures struct {
	File            string         `json:"file"`
	SentencesTotal  int            `json:"sentences_total"`
	ChecksumOK      int            `json:"checksum_ok"`
	ChecksumBad     int            `json:"checksum_bad"`
	ChecksumMissing int            `json:"checksum_missing"`
	ChecksumLower   int            `json:"checksum_lowercase_hex"`
	RMCValid        int            `json:"rmc_valid"`
	RMCInvalid      int            `json:"rmc_invalid"`
	ZDA             int            `json:"zda"`
	FirstUTC        *string        `json:"first_utc"`
	LastUTC         *string        `json:"last_utc"`
	Talkers         map[string]int `json:"talkers"`
	SentenceTypes   map[string]int `json:"sentence_types"`
	BytesDropped    uint64         `json:"bytes_dropped"`
}

func nmeaStats(fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print JSON with the field names of expected.json (an array for several files)")
	return func(args []string, stdout, stderr io.Writer) int {
		figs := make([]nmeaFigures, 0, len(args))
		for _, file := range args {
			fig, err := nmeaFileStats(file)
			if err != nil {
				return fail(stderr, "timenodectl nmea stats", err)
			}
			figs = append(figs, fig)
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			var v any = figs
			if len(figs) == 1 {
				v = figs[0] // one file: the object expected.json holds per capture
			}
			if err := enc.Encode(v); err != nil {
				return fail(stderr, "timenodectl nmea stats", err)
			}
			return 0
		}
		for i, fig := range figs {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			printNMEAFigures(stdout, fig)
		}
		return 0
	}
}

// nmeaFileStats counts one capture.
func nmeaFileStats(file string) (nmeaFigures, error) {
	capture, err := os.ReadFile(file)
	if err != nil {
		return nmeaFigures{}, err
	}
	var tally gnss.Tally
	var framer gnss.Framer
	emit := func(raw []byte, _ time.Time) { tally.Add(raw) }
	framer.Feed(gnss.StripComments(capture), time.Time{}, emit)
	framer.Flush(emit)
	fig := nmeaFigures{
		File: filepath.Base(file), SentencesTotal: tally.SentencesTotal,
		ChecksumOK: tally.ChecksumOK, ChecksumBad: tally.ChecksumBad, ChecksumMissing: tally.ChecksumMissing,
		ChecksumLower: tally.ChecksumLowercase, RMCValid: tally.RMCValid, RMCInvalid: tally.RMCInvalid,
		ZDA: tally.ZDA, Talkers: tally.Talkers, SentenceTypes: tally.Types, BytesDropped: framer.Dropped(),
	}
	if tally.FirstUTC != "" {
		fig.FirstUTC, fig.LastUTC = &tally.FirstUTC, &tally.LastUTC
	}
	return fig, nil
}

// printNMEAFigures writes one capture's counts as a table.
func printNMEAFigures(stdout io.Writer, fig nmeaFigures) {
	utc := func(s *string) string {
		if s == nil {
			return "-"
		}
		return *s
	}
	fmt.Fprintf(stdout, "file              %s\n", fig.File)
	fmt.Fprintf(stdout, "sentences         %d (ok %d, bad checksum %d, no checksum %d, lower-case hex %d)\n",
		fig.SentencesTotal, fig.ChecksumOK, fig.ChecksumBad, fig.ChecksumMissing, fig.ChecksumLower)
	fmt.Fprintf(stdout, "rmc               %d valid, %d invalid\n", fig.RMCValid, fig.RMCInvalid)
	fmt.Fprintf(stdout, "zda               %d\n", fig.ZDA)
	fmt.Fprintf(stdout, "first utc         %s\n", utc(fig.FirstUTC))
	fmt.Fprintf(stdout, "last utc          %s\n", utc(fig.LastUTC))
	fmt.Fprintf(stdout, "talkers           %s\n", joinCounts(fig.Talkers))
	fmt.Fprintf(stdout, "sentence types    %s\n", joinCounts(fig.SentenceTypes))
	fmt.Fprintf(stdout, "bytes dropped     %d\n", fig.BytesDropped)
}

// joinCounts formats a count map as "A:1, B:2" in key order.
func joinCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
