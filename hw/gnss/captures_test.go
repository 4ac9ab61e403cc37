package gnss

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
)

// captureDir holds the receiver captures and expected.json.
const captureDir = "../../testdata/nmea"

// expectedFile is one entry of expected.json (the required fields plus the
// checksum split, which Stats also reports).
type expectedFile struct {
	File            string         `json:"file"`
	SentencesTotal  int            `json:"sentences_total"`
	ChecksumOK      int            `json:"checksum_ok"`
	ChecksumBad     int            `json:"checksum_bad"`
	ChecksumMissing int            `json:"checksum_missing"`
	RMCValid        int            `json:"rmc_valid"`
	RMCInvalid      int            `json:"rmc_invalid"`
	ZDA             int            `json:"zda"`
	FirstUTC        *string        `json:"first_utc"`
	LastUTC         *string        `json:"last_utc"`
	Talkers         map[string]int `json:"talkers"`
}

func loadExpected(t testing.TB) []expectedFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(captureDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Files []expectedFile `json:"files"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	if len(doc.Files) == 0 {
		t.Fatal("expected.json lists no files")
	}
	return doc.Files
}

// TestCapturesThroughPTY replays every capture through a pty into the real
// serial path (tarm/serial, Framer, checksum, Parser) as fast as the pty
// allows and compares the counts with expected.json.
func TestCapturesThroughPTY(t *testing.T) {
	logs, _ := filepath.Glob(filepath.Join(captureDir, "*.log"))
	files := loadExpected(t)
	if len(logs) != len(files) {
		t.Errorf("%d captures but %d entries in expected.json", len(logs), len(files))
	}
	for _, want := range files {
		t.Run(want.File, func(t *testing.T) {
			capture, err := os.ReadFile(filepath.Join(captureDir, want.File))
			if err != nil {
				t.Fatal(err)
			}
			stream := StripComments(capture)
			link := deviceLink(t)
			m := openPTY(t, link)
			var tally Tally
			cfg := Config{Device: link, Tap: func(raw []byte, _ ChecksumStatus) { tally.Add(raw) }}
			run := startReceiver(t, cfg, clocktest.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
			go func() {
				for range run.fixes {
				}
			}()
			if err := Replay(context.Background(), m, Bursts(stream), 0); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "all bytes read", func() bool {
				return run.r.Stats().BytesRead == uint64(len(stream))
			})
			run.stop()
			st := run.r.Stats()

			got := expectedFile{
				File:            want.File,
				SentencesTotal:  tally.SentencesTotal,
				ChecksumOK:      tally.ChecksumOK,
				ChecksumBad:     tally.ChecksumBad,
				ChecksumMissing: tally.ChecksumMissing,
				RMCValid:        tally.RMCValid,
				RMCInvalid:      tally.RMCInvalid,
				ZDA:             tally.ZDA,
				FirstUTC:        nullable(tally.FirstUTC),
				LastUTC:         nullable(tally.LastUTC),
				Talkers:         tally.Talkers,
			}
			compareExpected(t, got, want)
			if int(st.ChecksumBad) != want.ChecksumBad || int(st.ChecksumMissing) != want.ChecksumMissing {
				t.Errorf("Stats checksum bad/missing = %d/%d, want %d/%d",
					st.ChecksumBad, st.ChecksumMissing, want.ChecksumBad, want.ChecksumMissing)
			}
			if n := st.SentencesOK + st.Unparsable + st.UnknownType; int(n) != want.ChecksumOK {
				t.Errorf("Stats ok+unparsable+unknown = %d, want checksum_ok %d", n, want.ChecksumOK)
			}
			if st.Reconnects != 0 {
				t.Errorf("Stats.Reconnects = %d during a replay, want 0", st.Reconnects)
			}
		})
	}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// compareExpected reports every field of got that differs from want.
func compareExpected(t *testing.T, got, want expectedFile) {
	t.Helper()
	ints := []struct {
		name      string
		got, want int
	}{
		{"sentences_total", got.SentencesTotal, want.SentencesTotal},
		{"checksum_ok", got.ChecksumOK, want.ChecksumOK},
		{"checksum_bad", got.ChecksumBad, want.ChecksumBad},
		{"checksum_missing", got.ChecksumMissing, want.ChecksumMissing},
		{"rmc_valid", got.RMCValid, want.RMCValid},
		{"rmc_invalid", got.RMCInvalid, want.RMCInvalid},
		{"zda", got.ZDA, want.ZDA},
	}
	for _, c := range ints {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if deref(got.FirstUTC) != deref(want.FirstUTC) {
		t.Errorf("first_utc = %s, want %s", deref(got.FirstUTC), deref(want.FirstUTC))
	}
	if deref(got.LastUTC) != deref(want.LastUTC) {
		t.Errorf("last_utc = %s, want %s", deref(got.LastUTC), deref(want.LastUTC))
	}
	if len(got.Talkers) != 0 || len(want.Talkers) != 0 {
		if !maps.Equal(got.Talkers, want.Talkers) {
			t.Errorf("talkers = %v, want %v", got.Talkers, want.Talkers)
		}
	}
}

// TestCaptureWithoutChecksums replays the HP 58534A capture, whose
// sentences carry no checksum at all: ignored by default, decoded when
// Config.AllowMissingChecksum is set. Its one ZDA+GGA epoch is a valid
// fix without any RMC; the GGA-only epochs that follow have no date.
func TestCaptureWithoutChecksums(t *testing.T) {
	capture, err := os.ReadFile(filepath.Join(captureDir, "hp58534a.log"))
	if err != nil {
		t.Fatal(err)
	}
	stream := StripComments(capture)
	tests := []struct {
		name      string
		allow     bool
		wantOK    uint64
		wantFixes int
	}{
		{"refused by default", false, 0, 0},
		{"allowed", true, 11, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			link := deviceLink(t)
			m := openPTY(t, link)
			cfg := Config{Device: link, AllowMissingChecksum: tc.allow, MinDate: time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)}
			run := startReceiver(t, cfg, clocktest.NewManual(time.Date(2010, 10, 25, 22, 24, 49, 500e6, time.UTC)))
			if _, err := m.Write(stream); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "all bytes read", func() bool { return run.r.Stats().BytesRead == uint64(len(stream)) })
			time.Sleep(3 * DefaultEpochGap)
			run.stop()
			close(run.fixes)
			var fixes []Fix
			for f := range run.fixes {
				fixes = append(fixes, f)
			}
			st := run.r.Stats()
			if st.ChecksumMissing != 13 || st.SentencesOK != tc.wantOK || len(fixes) != tc.wantFixes {
				t.Fatalf("missing %d ok %d fixes %d, want 13 %d %d", st.ChecksumMissing, st.SentencesOK, len(fixes), tc.wantOK, tc.wantFixes)
			}
			if tc.wantFixes == 0 {
				return
			}
			want := time.Date(2010, 10, 25, 22, 24, 49, 0, time.UTC)
			if f := fixes[0]; !f.UTC.Equal(want) || !f.Valid || f.Satellites != 7 || f.HDOP != 2.31 {
				t.Errorf("first Fix = %+v, want %v valid with 7 satellites, HDOP 2.31", f, want)
			}
			if f := fixes[1]; f.Flags != FlagNoDate || f.Valid {
				t.Errorf("second Fix = %+v, want FlagNoDate and not valid", f)
			}
		})
	}
}
