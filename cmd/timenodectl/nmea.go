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
	register("nmea", "replay NMEA captures into a pty, count their sentences", nmeaCmd)
}

const nmeaUsage = `usage:
  timenodectl nmea replay FILE [--rate N] [--link PATH] [--loop]
      create a pty, print its slave path (and symlink it at PATH), and write
      the capture into it paced one burst per receiver second (divided by
      N; --rate 0 writes as fast as the pty accepts). Point the daemon's
      gnss device at the printed path or the link. Comment lines are skipped.
  timenodectl nmea stats FILE [--json]
      count the capture's sentences by the rules of testdata/nmea/README.md`

func nmeaCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, nmeaUsage)
		return 2
	}
	switch args[0] {
	case "replay":
		return nmeaReplay(args[1:], stdout, stderr)
	case "stats":
		return nmeaStats(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, nmeaUsage)
		return 0
	}
	fmt.Fprintf(stderr, "timenodectl nmea: unknown subcommand %q\n%s\n", args[0], nmeaUsage)
	return 2
}

// fileAndFlags parses args that name one FILE before or after the flags.
func fileAndFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (string, bool) {
	file, rest := "", args
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return "", false
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "timenodectl nmea %s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return "", false
	}
	if file == "" {
		fmt.Fprintf(stderr, "timenodectl nmea %s: missing FILE\n", fs.Name())
		return "", false
	}
	return file, true
}

func nmeaReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rate := fs.Float64("rate", 1, "speed-up factor; 0 writes as fast as possible")
	link := fs.String("link", "", "also make this path a symlink to the pty slave")
	loop := fs.Bool("loop", false, "replay the capture again and again until interrupted")
	file, ok := fileAndFlags(fs, args, stderr)
	if !ok {
		return 2
	}
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

func nmeaStats(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON with the field names of expected.json")
	file, ok := fileAndFlags(fs, args, stderr)
	if !ok {
		return 2
	}
	capture, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "timenodectl: nmea stats: %v\n", err)
		return 1
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
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(fig); err != nil {
			fmt.Fprintf(stderr, "timenodectl: nmea stats: %v\n", err)
			return 1
		}
		return 0
	}
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
	return 0
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
