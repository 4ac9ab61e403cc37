package gnss

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFramer(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		want        []string
		wantDropped uint64
		wantPending int
	}{
		{"crlf", "$GPRMC,1*00\r\n$GPGGA,2*00\r\n", []string{"$GPRMC,1*00", "$GPGGA,2*00"}, 0, 0},
		{"lf and cr only", "$A,1\n$B,2\r$C,3\r\n", []string{"$A,1", "$B,2", "$C,3"}, 0, 0},
		{"double dollar", "$$GNGSA,1*00\r\n", []string{"$GNGSA,1*00"}, 1, 0},
		{"glued", "$GPGGA,030130$GPGLL,1*00\n", []string{"$GPGGA,030130", "$GPGLL,1*00"}, 0, 0},
		{"leading garbage and NUL", "\x00\x00xyz$A,1\n", []string{"$A,1"}, 5, 0},
		{"NUL inside a sentence is kept", "$A,\x00*00\n", []string{"$A,\x00*00"}, 0, 0},
		{"trailing blanks trimmed", "$A,1*00 \t\r\n", []string{"$A,1*00"}, 2, 0},
		{"encapsulated", "!AIVDM,1*00\r\n", []string{"!AIVDM,1*00"}, 0, 0},
		{"lone delimiters", "$\r\n!\n$ \n", nil, 4, 0},
		{"half line pending", "$A,1\n$B,", []string{"$A,1"}, 0, 3},
		{"overlong dropped", "$" + strings.Repeat("x", MaxSentence) + "\n$A\n", []string{"$A"}, MaxSentence + 1, 0},
		{"exactly max kept", "$" + strings.Repeat("x", MaxSentence-1) + "\n", []string{"$" + strings.Repeat("x", MaxSentence-1)}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f Framer
			var got []string
			f.Feed([]byte(tc.in), time.Time{}, func(raw []byte, _ time.Time) { got = append(got, string(raw)) })
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("sentences = %q, want %q", got, tc.want)
			}
			if f.Dropped() != tc.wantDropped || f.Pending() != tc.wantPending {
				t.Errorf("dropped %d pending %d, want %d %d", f.Dropped(), f.Pending(), tc.wantDropped, tc.wantPending)
			}
			if f.Consumed() != uint64(len(tc.in)) {
				t.Errorf("consumed %d, want %d", f.Consumed(), len(tc.in))
			}
		})
	}
}

// TestFramerStartTime checks that a sentence split over two reads carries
// the time of the read that brought its first byte.
func TestFramerStartTime(t *testing.T) {
	var f Framer
	t1, t2 := time.Unix(1, 0), time.Unix(2, 0)
	var starts []time.Time
	emit := func(_ []byte, at time.Time) { starts = append(starts, at) }
	f.Feed([]byte("$GPRMC,12"), t1, emit)
	f.Feed([]byte("3*00\r\n$GPGGA,1*00\r\n"), t2, emit)
	if len(starts) != 2 || !starts[0].Equal(t1) || !starts[1].Equal(t2) {
		t.Errorf("starts = %v, want [%v %v]", starts, t1, t2)
	}
}

func TestVerifyChecksum(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      ChecksumStatus
		wantLower bool
	}{
		{"upper", "$GPZDA,100000,23,11,2026,00,00*4E", ChecksumOK, false},
		{"lower", "$GPZDA,100000,23,11,2026,00,00*4e", ChecksumOK, true},
		{"wrong", "$GPZDA,100000,23,11,2026,00,00*4F", ChecksumBad, false},
		{"one digit", "$GPGSV,3,3,09,25,12,041,*7", ChecksumBad, false},
		{"trailing bytes", "$GPZDA,100000,23,11,2026,00,00*4Ex", ChecksumBad, false},
		{"not hex", "$GPZDA,100000,23,11,2026,00,00*G0", ChecksumBad, false},
		{"two stars", "$A*B*00", ChecksumBad, false},
		{"missing", "$PJLTS,1,2", ChecksumMissing, false},
		{"empty body", "$*00", ChecksumOK, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, lower := VerifyChecksum([]byte(tc.in))
			if got != tc.want || lower != tc.wantLower {
				t.Errorf("VerifyChecksum(%q) = %v, %v; want %v, %v", tc.in, got, lower, tc.want, tc.wantLower)
			}
		})
	}
}

func TestParseTimeAndDate(t *testing.T) {
	tests := []struct {
		name   string
		tod    string
		date   string
		want   string
		wantOK bool
	}{
		{"plain", "225308", "060601", "2001-06-06T22:53:08.000Z", true},
		{"fraction truncated", "235951.9529", "050180", "1980-01-05T23:59:51.952Z", true},
		{"fraction padded", "101010.5", "220899", "1999-08-22T10:10:10.500Z", true},
		{"leap second", "235960", "311216", "2016-12-31T23:59:60.000Z", true},
		{"hour 24", "240000", "010120", "", false},
		{"31 February", "120000", "310220", "", false},
		{"empty date", "120000", "", "", false},
		{"short time", "1200", "010120", "", false},
		{"dot without digits is fine", "120000.", "010120", "2020-01-01T12:00:00.000Z", true},
		{"garbage fraction", "120000.x", "010120", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tod, okT := ParseTimeOfDay(tc.tod)
			d, okD := ParseDDMMYY(tc.date)
			if okT && okD != tc.wantOK || (okT && okD && FormatUTC(d, tod) != tc.want) {
				t.Errorf("got %s ok %v, want %s ok %v", FormatUTC(d, tod), okT && okD, tc.want, tc.wantOK)
			}
			if !tc.wantOK && okT && okD {
				t.Errorf("accepted %q %q", tc.tod, tc.date)
			}
		})
	}
	if _, ok := ParseZDADate("13", "04", "15"); ok {
		t.Error("ZDA with a two-digit year accepted")
	}
	if d, ok := ParseZDADate("13", "04", "2015"); !ok || d != (Date{2015, 4, 13}) {
		t.Errorf("ZDA 13 04 2015 = %v %v", d, ok)
	}
}

// TestParserShortQuery is the crash FuzzFramerParse found in go-nmea
// v1.10.0: a two-byte "$Q" taken for a query sentence.
func TestParserShortQuery(t *testing.T) {
	for _, in := range []string{"$Q", "$Q*51", "$Q,1", "$GPQ", "$GPGPQ,RMC*2B"} {
		t.Run(in, func(t *testing.T) {
			_, err := NewParser().Parse([]byte(in))
			if in == "$GPGPQ,RMC*2B" {
				if err != nil {
					t.Errorf("real query rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUnparsable) && !errors.Is(err, ErrUnknownType) {
				t.Errorf("Parse(%q) error = %v, want ErrUnparsable or ErrUnknownType", in, err)
			}
		})
	}
}
