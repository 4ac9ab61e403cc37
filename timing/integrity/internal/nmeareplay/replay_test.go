package nmeareplay

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/timing/integrity"
)

const captures = "../../../../testdata/nmea"

// replayReasons replays a capture through a default ReceiverDetector and
// returns the distinct reasons it reported.
func replayReasons(t testing.TB, path string) ([]string, int) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	snaps := Snapshots(data)
	d := integrity.NewReceiverDetector(integrity.ReceiverConfig{})
	set := map[string]bool{}
	for _, s := range snaps {
		for _, e := range d.Observe(s) {
			set[e.Reason] = true
		}
	}
	var out []string
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, len(snaps)
}

// TestCaptures replays every capture in testdata/nmea. Only the genuinely
// broken receivers may alarm, for exactly these reasons (see
// docs/INTEGRITY.md).
func TestCaptures(t *testing.T) {
	want := map[string][]string{
		// Cold boot after a week rollover: a valid 2019-04-07 fix, then
		// the same receiver names 1999-08-22, 1024 weeks earlier.
		"gp-320fw-2019-04-07-coldboot.log": {integrity.ReasonWeekRollover},
		// Valid fixes stepping back 13 s (19:41:24 -> 19:41:11).
		"humminbird-M37.log": {integrity.ReasonTimeBackwards},
	}
	files, err := filepath.Glob(filepath.Join(captures, "*.log"))
	if err != nil || len(files) != 22 {
		t.Fatalf("%d captures (%v), want the 22 of testdata/nmea/README.md", len(files), err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			got, n := replayReasons(t, f)
			if !slices.Equal(got, want[name]) {
				t.Fatalf("%d epochs, reasons %v, want %v", n, got, want[name])
			}
		})
	}
}

func TestSentences(t *testing.T) {
	in := "# comment $GPRMC\r\n$GPGGA,1*00$GPGLL,2*00 \r\n$$GNGSA,3\ngarbage\n"
	got := Sentences([]byte(in))
	want := []string{"$GPGGA,1*00", "$GPGLL,2*00", "$GNGSA,3"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// FuzzSnapshots: any byte stream replays without panicking, with one
// synthetic second per epoch.
func FuzzSnapshots(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(captures, "*.log"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		snaps := Snapshots(data)
		for i, s := range snaps {
			if !s.At.Equal(Base.Add(time_(i))) {
				t.Fatalf("epoch %d at %v", i, s.At)
			}
		}
		d := integrity.NewReceiverDetector(integrity.ReceiverConfig{})
		for _, s := range snaps {
			d.Observe(s)
		}
	})
}

func time_(i int) time.Duration { return time.Duration(i) * time.Second }
