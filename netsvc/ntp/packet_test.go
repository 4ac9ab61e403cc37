package ntp

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// request builds a packet of the given version and mode followed by trailer.
func request(version, mode uint8, tx Timestamp, trailer []byte) []byte {
	h := Header{Version: version, Mode: mode, Poll: 6, TxTime: tx}
	b := make([]byte, HeaderLen, HeaderLen+len(trailer))
	h.MarshalTo(b)
	return append(b, trailer...)
}

// extField returns an RFC 7822 extension field of total length n.
func extField(typ uint16, n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint16(b, typ)
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	return b
}

func TestTimestampConversion(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want Timestamp
	}{
		{"unix epoch", time.Unix(0, 0), Timestamp(ntpEpochOffset) << 32},
		{"half second", time.Unix(0, 500_000_000), Timestamp(ntpEpochOffset)<<32 | 1<<31},
		{"era 1 begins", time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC), 0 << 32},
		{"era 1 plus a second", time.Date(2036, 2, 7, 6, 28, 17, 0, time.UTC), 1 << 32},
		{"zero time is unknown", time.Time{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := TimestampFromTime(tc.t); got != tc.want {
				t.Errorf("TimestampFromTime(%v) = %#x, want %#x", tc.t, uint64(got), uint64(tc.want))
			}
		})
	}
}

func TestTimestampRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		t     time.Time
		pivot time.Time
	}{
		{"now", time.Date(2026, 11, 23, 11, 0, 0, 123_456_789, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"after era rollover", time.Date(2040, 3, 1, 0, 0, 1, 999_999_999, time.UTC), time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"before pivot", time.Date(2000, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := TimestampFromTime(tc.t).Time(tc.pivot)
			if d := got.Sub(tc.t); d < -time.Nanosecond || d > time.Nanosecond {
				t.Errorf("round trip of %v = %v (off by %v)", tc.t, got, d)
			}
		})
	}
}

func TestShortFromDuration(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want uint32
	}{
		{"zero", 0, 0},
		{"negative", -time.Second, 0},
		{"one second", time.Second, 1 << 16},
		{"1 ms", time.Millisecond, 66},
		{"saturates", 70000 * time.Second, 0xffffffff},
		// A published bound is never smaller than the computed one: every
		// fraction of a unit (1/65536 s, about 15.26 µs) rounds up.
		{"1 ns", time.Nanosecond, 1},
		{"3 µs", 3 * time.Microsecond, 1},
		{"7 µs", 7 * time.Microsecond, 1},
		{"just under one unit", 15258 * time.Nanosecond, 1},
		{"just over one unit", 15259 * time.Nanosecond, 2},
		{"1.5 ms", 1500 * time.Microsecond, 99},
		{"last nanosecond before saturation", 65536*time.Second - time.Nanosecond, 0xffffffff},
		{"exactly 65536 s", 65536 * time.Second, 0xffffffff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShortFromDuration(tc.d); got != tc.want {
				t.Errorf("ShortFromDuration(%v) = %d, want %d", tc.d, got, tc.want)
			}
		})
	}
}

// TestShortFromDurationNeverUnderstates: the short value read back as
// seconds is never less than the duration it came from, and less than one
// unit more.
func TestShortFromDurationNeverUnderstates(t *testing.T) {
	for d := time.Duration(0); d < 200*time.Microsecond; d += 137 * time.Nanosecond {
		got := ShortFromDuration(d)
		back := float64(got) / 65536 * 1e9 // nanoseconds
		if back < float64(d) || back-float64(d) >= 1e9/65536 {
			t.Fatalf("ShortFromDuration(%v) = %d = %.1f ns", d, got, back)
		}
	}
}

func TestParseRequest(t *testing.T) {
	mac20 := make([]byte, macMD5)
	tests := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"v4 client", request(4, ModeClient, 1, nil), nil},
		{"v3 client", request(3, ModeClient, 1, nil), nil},
		{"empty", nil, ErrShort},
		{"47 bytes", request(4, ModeClient, 1, nil)[:47], ErrShort},
		{"v2", request(2, ModeClient, 1, nil), ErrVersion},
		{"v5", request(5, ModeClient, 1, nil), ErrVersion},
		{"control mode 6", request(4, ModeControl, 1, nil), ErrMode},
		{"private mode 7", request(3, ModePrivate, 1, nil), ErrMode},
		{"symmetric active", request(4, ModeSymmetricActive, 1, nil), ErrMode},
		{"server mode", request(4, ModeServer, 1, nil), ErrMode},
		{"broadcast", request(4, ModeBroadcast, 1, nil), ErrMode},
		{"v4 with MD5 MAC", request(4, ModeClient, 1, mac20), nil},
		{"v3 with SHA1 MAC", request(3, ModeClient, 1, make([]byte, macSHA1)), nil},
		{"v4 crypto-NAK", request(4, ModeClient, 1, make([]byte, macCryptoNAK)), nil},
		{"v4 one extension field", request(4, ModeClient, 1, extField(0x0104, 36)), nil},
		{"v4 two fields and MAC", request(4, ModeClient, 1, append(append(extField(1, 16), extField(2, 28)...), mac20...)), nil},
		{"v3 with extension field", request(3, ModeClient, 1, extField(0x0104, 36)), ErrMalformed},
		{"field length 12", request(4, ModeClient, 1, extField(1, 12)), ErrMalformed},
		{"field length not multiple of 4", request(4, ModeClient, 1, append(extField(1, 16), 0, 0)), ErrMalformed},
		{"field longer than packet", request(4, ModeClient, 1, func() []byte { b := extField(1, 16); b[3] = 64; return b }()), ErrMalformed},
		{"odd trailing bytes", request(4, ModeClient, 1, []byte{1, 2, 3}), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseRequest(tc.pkt)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("ParseRequest() error = %v, want %v", err, tc.want)
			}
			if err == nil && h.TxTime != 1 {
				t.Errorf("TxTime = %d, want 1", h.TxTime)
			}
		})
	}
}

// TestParseRealClientRequests parses requests captured from the clients the
// acceptance tests use (also seeds of FuzzParseRequest).
func TestParseRealClientRequests(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		wantLeap uint8
	}{
		{"chrony 4.3", "chrony-4.3-client-request", LeapNoWarning},
		{"ntpsec 1.2.2 ntpdig", "ntpsec-1.2.2-ntpdig-request", LeapAlarm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := readCorpusBytes(t, filepath.Join("testdata", "fuzz", "FuzzParseRequest", tc.file))
			h, err := ParseRequest(pkt)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if h.Version != 4 || h.Mode != ModeClient || h.Leap != tc.wantLeap || h.TxTime == 0 {
				t.Errorf("header %+v, want v4 client leap %d with a transmit timestamp", h, tc.wantLeap)
			}
		})
	}
}

// readCorpusBytes decodes a one-value "go test fuzz v1" corpus file.
func readCorpusBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a one-value corpus file", path)
	}
	lit, ok := strings.CutPrefix(lines[1], "[]byte(")
	lit, ok2 := strings.CutSuffix(lit, ")")
	s, err := strconv.Unquote(lit)
	if !ok || !ok2 || err != nil {
		t.Fatalf("%s: bad []byte literal: %v", path, err)
	}
	return []byte(s)
}

func TestParseRequestAllocatesNothing(t *testing.T) {
	pkt := request(4, ModeClient, 1, extField(0x0104, 36))
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseRequest(pkt) }); n != 0 {
		t.Errorf("ParseRequest allocates %v times per call, want 0", n)
	}
}
