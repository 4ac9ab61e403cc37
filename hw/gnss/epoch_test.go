package gnss

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// assemble frames, parses and assembles stream, one sentence per
// millisecond from t0, flushing at the end.
func assemble(t *testing.T, a *Assembler, stream []byte, t0 time.Time) []Fix {
	t.Helper()
	p := NewParser()
	var fx Framer
	var out []Fix
	i := 0
	fx.Feed(stream, t0, func(raw []byte, _ time.Time) {
		i++
		if st, _ := VerifyChecksum(raw); st != ChecksumOK {
			return
		}
		s, err := p.Parse(raw)
		if err != nil {
			return
		}
		if f, ok := a.Add(s, t0.Add(time.Duration(i)*time.Millisecond)); ok {
			out = append(out, f)
		}
	})
	if f, ok := a.Flush(); ok {
		out = append(out, f)
	}
	return out
}

func rmc(hms, status, ddmmyy string) []byte {
	return AppendSentence(nil, fmt.Sprintf("GPRMC,%s,%s,4807.038,N,01131.000,E,0.0,0.0,%s,,,A", hms, status, ddmmyy))
}

// TestAssemblerDates checks that default dates, GPS week rollover and
// implausible two-digit years are flagged and never Valid.
func TestAssemblerDates(t *testing.T) {
	minDate := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		stream    [][]byte
		wantUTC   []string
		wantFlags []DateFlags
		wantValid []bool
	}{
		{"good 2019 stream", [][]byte{rmc("235958", "A", "060419"), rmc("235959", "A", "060419")},
			[]string{"2019-04-06T23:59:58Z", "2019-04-06T23:59:59Z"}, []DateFlags{0, 0}, []bool{true, true}},
		{"1999-08-22 after 2019-04-06 is a rollover", [][]byte{rmc("235959", "A", "060419"), rmc("000000", "A", "220899")},
			[]string{"2019-04-06T23:59:59Z", "1999-08-22T00:00:00Z"}, []DateFlags{0, FlagWeekRollover}, []bool{true, false}},
		{"1980-01-05 default date", [][]byte{rmc("235951.952", "V", "050180")},
			[]string{"1980-01-05T23:59:51.952Z"}, []DateFlags{FlagDefaultDate}, []bool{false}},
		{"1980-01-06 default date even with status A", [][]byte{rmc("000001", "A", "060180")},
			[]string{"1980-01-06T00:00:01Z"}, []DateFlags{FlagDefaultDate}, []bool{false}},
		{"two-digit year 99 alone is implausible", [][]byte{rmc("120000", "A", "010699")},
			[]string{"1999-06-01T12:00:00Z"}, []DateFlags{FlagImplausible}, []bool{false}},
		{"GGA time only has no date", [][]byte{AppendSentence(nil, "GPGGA,120000,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")},
			[]string{"0001-01-01T12:00:00Z"}, []DateFlags{FlagNoDate}, []bool{false}},
		{"ZDA and RMC disagree", [][]byte{rmc("120000", "A", "010619"), AppendSentence(nil, "GPZDA,120000,02,06,2019,00,00")},
			[]string{"2019-06-02T12:00:00Z"}, []DateFlags{FlagDateConflict}, []bool{false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := Assembler{MinDate: minDate}
			var stream []byte
			for _, s := range tc.stream {
				stream = append(stream, s...)
			}
			got := assemble(t, &a, stream, time.Date(2019, 4, 6, 0, 0, 0, 0, time.UTC))
			if len(got) != len(tc.wantUTC) {
				t.Fatalf("got %d Fixes, want %d: %+v", len(got), len(tc.wantUTC), got)
			}
			for i, f := range got {
				if u := f.UTC.Format(time.RFC3339Nano); u != tc.wantUTC[i] || f.Flags != tc.wantFlags[i] || f.Valid != tc.wantValid[i] {
					t.Errorf("Fix %d: UTC %s Flags %b Valid %v, want %s %b %v", i, u, f.Flags, f.Valid,
						tc.wantUTC[i], tc.wantFlags[i], tc.wantValid[i])
				}
			}
		})
	}
}

// TestAssemblerRolloverAgainstClock flags a date 1024 weeks behind the
// local clock even when the stream carries nothing else.
func TestAssemblerRolloverAgainstClock(t *testing.T) {
	a := Assembler{MinDate: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)}
	got := assemble(t, &a, rmc("000000", "A", "220899"), time.Date(2019, 4, 7, 0, 0, 0, 0, time.UTC))
	if len(got) != 1 || got[0].Flags != FlagWeekRollover || got[0].Valid {
		t.Fatalf("got %+v, want one rollover-flagged, invalid Fix", got)
	}
}

// TestAssemblerColdbootCapture runs the GPS-320FW cold-boot capture (a
// receiver with the 2019 week-rollover bug) through the assembler: its
// 1999-08-22 epochs must be flagged and none of them Valid.
func TestAssemblerColdbootCapture(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(captureDir, "gp-320fw-2019-04-07-coldboot.log"))
	if err != nil {
		t.Fatal(err)
	}
	a := Assembler{MinDate: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)}
	fixes := assemble(t, &a, StripComments(b), time.Date(2019, 4, 7, 0, 0, 0, 0, time.UTC))
	rolled := 0
	for _, f := range fixes {
		if f.UTC.Year() == 1999 {
			rolled++
			if f.Flags&FlagWeekRollover == 0 || f.Valid {
				t.Errorf("1999 Fix %v: Flags %b Valid %v, want rollover flag and not Valid", f.UTC, f.Flags, f.Valid)
			}
		}
	}
	if rolled == 0 {
		t.Errorf("no 1999 epoch among %d Fixes; the capture has them", len(fixes))
	}
}

// TestAssemblerBoundaries checks the epoch rules: a new second completes
// the epoch, Received is the first sentence's arrival, and a late sentence
// of a delivered second does not produce a second Fix.
func TestAssemblerBoundaries(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewParser()
	add := func(a *Assembler, s []byte, at time.Duration) (Fix, bool) {
		parsed, err := p.Parse(s[:len(s)-2])
		if err != nil {
			t.Fatal(err)
		}
		return a.Add(parsed, t0.Add(at))
	}
	var a Assembler
	gsv := AppendSentence(nil, "GPGSV,1,1,01,01,40,083,46")
	if _, ok := add(&a, gsv, 0); ok {
		t.Fatal("Fix before any time")
	}
	if _, ok := add(&a, rmc("100000", "A", "231126"), 5*time.Millisecond); ok {
		t.Fatal("Fix from the epoch's own RMC")
	}
	f, ok := add(&a, rmc("100001", "A", "231126"), time.Second)
	if !ok || f.Received != t0 || f.UTC != time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) || !f.Valid {
		t.Fatalf("got %+v %v, want the 10:00:00 Fix received at the GSV", f, ok)
	}
	if f, ok = a.Flush(); !ok || f.Received != t0.Add(time.Second) {
		t.Fatalf("Flush: %+v %v", f, ok)
	}
	if _, ok := add(&a, gsv, 1100*time.Millisecond); ok {
		t.Fatal("Fix from a GSV")
	}
	if _, ok := add(&a, rmc("100001", "A", "231126"), 1200*time.Millisecond); ok {
		t.Fatal("Fix from a late sentence")
	}
	if f, ok := a.Flush(); ok {
		t.Fatalf("second Fix %+v for a delivered second", f)
	}
}
