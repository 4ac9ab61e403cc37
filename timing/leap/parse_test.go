package leap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// readTestdata returns a file from testdata or fails the test.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseTzdata2025b(t *testing.T) {
	s, err := Load(filepath.Join("testdata", "leap-seconds.list"))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 7, 7, 0, 0, 0, 0, time.UTC); !s.Updated.Equal(want) {
		t.Errorf("Updated = %v, want %v", s.Updated, want)
	}
	if want := time.Date(2026, 6, 28, 0, 0, 0, 0, time.UTC); !s.Expires.Equal(want) {
		t.Errorf("Expires = %v, want %v", s.Expires, want)
	}
	if len(s.Entries) != 28 {
		t.Fatalf("%d entries, want 28", len(s.Entries))
	}
	first, last := s.Entries[0], s.Entries[len(s.Entries)-1]
	if want := (Entry{time.Date(1972, 1, 1, 0, 0, 0, 0, time.UTC), 10}); !first.Start.Equal(want.Start) || first.TAIOffset != want.TAIOffset {
		t.Errorf("first entry %v, want %v", first, want)
	}
	if want := (Entry{time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC), 37}); !last.Start.Equal(want.Start) || last.TAIOffset != want.TAIOffset {
		t.Errorf("last entry %v, want %v", last, want)
	}
}

// edit applies old->new replacements to the real file, failing the test if
// one does not apply, so a table row cannot silently test the original.
func edit(t *testing.T, src []byte, pairs ...string) []byte {
	t.Helper()
	out := string(src)
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(out, pairs[i]) {
			t.Fatalf("edit: %q not in the file", pairs[i])
		}
		out = strings.Replace(out, pairs[i], pairs[i+1], 1)
	}
	return []byte(out)
}

func TestParseErrors(t *testing.T) {
	real := readTestdata(t, "leap-seconds.list")
	tests := []struct {
		name    string
		data    []byte
		wantErr error
	}{
		{"hash mismatch: update time changed", readTestdata(t, "bad-hash.list"), ErrHashMismatch},
		{"hash mismatch: leap moved by a day", edit(t, real, "3692217600      37", "3692304000      37"), ErrHashMismatch},
		{"hash mismatch: hash word changed", edit(t, real, "49db2447", "49db2448"), ErrHashMismatch},
		{"hash mismatch: entry removed", edit(t, real, "3692217600      37      # 1 Jan 2017\n", ""), ErrHashMismatch},
		{"truncated in the entries", readTestdata(t, "truncated.list"), ErrIncomplete},
		{"truncated before the entries", real[:bytes.Index(real, []byte("#@"))], ErrIncomplete},
		{"empty", nil, ErrIncomplete},
		{"no expiry", edit(t, real, "#@\t3991593600", "#\t3991593600"), ErrIncomplete},
		{"two hashes", append(bytes.Clone(real), "#h\t1 2 3 4 5\n"...), ErrMalformed},
		{"data after the hash", append(bytes.Clone(real), "3786912000      38\n"...), ErrMalformed},
		{"short hash", edit(t, real, " 39b8e49e", ""), ErrMalformed},
		{"hash word too long", edit(t, real, "39b8e49e", "139b8e49e"), ErrMalformed},
		{"step of two seconds", edit(t, real, "3692217600      37", "3692217600      38"), ErrMalformed},
		{"out of order", edit(t, real, "3692217600      37", "3644697600      37"), ErrMalformed},
		{"not at midnight", edit(t, real, "3692217600      37", "3692217601      37"), ErrMalformed},
		{"negative offset", edit(t, real, "2272060800      10", "2272060800      -10"), ErrMalformed},
		{"three fields", edit(t, real, "2272060800      10", "2272060800      10 1"), ErrMalformed},
		{"expiry before update", edit(t, real, "#@\t3991593600", "#@\t3960748800"), ErrMalformed},
		{"two update lines", edit(t, real, "#@\t3991593600", "#$\t3991593600"), ErrMalformed},
		{"garbage time", edit(t, real, "#$\t3960835200", "#$\t39608x5200"), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.data)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse = %v, %v; want %v", s, err, tt.wantErr)
			}
		})
	}
}

func TestParseAcceptsFormatVariants(t *testing.T) {
	real := readTestdata(t, "leap-seconds.list")
	want, err := Parse(real)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"CRLF line endings", bytes.ReplaceAll(real, []byte("\n"), []byte("\r\n"))},
		{"comment glued to the data", edit(t, real, "37      # 1 Jan 2017", "37#1 Jan 2017")},
		{"indented comment", edit(t, real, "#\tLIST OF LEAP SECONDS", "  #\tLIST OF LEAP SECONDS")},
		{"no final newline", bytes.TrimRight(real, "\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse = %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseHashWithoutLeadingZeros(t *testing.T) {
	// Build a list whose hash has a word below 0x10000000 and write that
	// word without its leading zero, as older NIST files did.
	s, err := Parse(readTestdata(t, "leap-seconds.list"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 64; i++ {
		s.Expires = s.Expires.Add(24 * time.Hour)
		out := s.Marshal()
		j := bytes.Index(out, []byte("#h\t"))
		words := strings.Fields(string(out[j+3:]))
		for w, word := range words {
			if !strings.HasPrefix(word, "0") {
				continue
			}
			words[w] = strings.TrimLeft(word, "0")
			trimmed := append(out[:j+3:j+3], strings.Join(words, " ")+"\n"...)
			got, err := Parse(trimmed)
			if err != nil {
				t.Fatalf("hash %q: %v", words, err)
			}
			if !got.Expires.Equal(s.Expires) {
				t.Errorf("Expires = %v, want %v", got.Expires, s.Expires)
			}
			return
		}
	}
	t.Fatal("no hash with a leading zero found in 64 tries")
}

func TestMarshalRoundTrip(t *testing.T) {
	s, err := Parse(readTestdata(t, "leap-seconds.list"))
	if err != nil {
		t.Fatal(err)
	}
	out := s.Marshal()
	got, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Marshal()) = %v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip = %+v, want %+v", got, s)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}
