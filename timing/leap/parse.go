package leap

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ntpEpochOffset is the number of seconds from 1900-01-01 (the NTP epoch the
// file counts from) to 1970-01-01.
const ntpEpochOffset = 2208988800

// Limits that keep parsed values sane; they are far beyond any real file.
const (
	maxNTPSeconds = 1 << 36 // about year 4077
	maxTAIOffset  = 100000  // the Linux kernel's limit
	secondsPerDay = 86400
)

// Errors returned by Parse, wrapped with the line they concern.
var (
	// ErrMalformed is a line that is not valid leap-seconds.list syntax or
	// data that contradicts itself (entries out of order, a step of TAI-UTC
	// other than one second, a leap that is not at midnight).
	ErrMalformed = errors.New("leap: malformed leap-seconds.list")
	// ErrIncomplete is a file without its update time, expiry, hash or
	// entries: typically a truncated download.
	ErrIncomplete = errors.New("leap: incomplete leap-seconds.list")
	// ErrHashMismatch is a file whose #h line does not match its data.
	ErrHashMismatch = errors.New("leap: leap-seconds.list hash mismatch")
)

// Entry is one data line: from Start (a UTC midnight) on, TAI-UTC is
// TAIOffset seconds.
type Entry struct {
	Start     time.Time
	TAIOffset int
}

// Schedule is a parsed and verified leap-seconds.list.
type Schedule struct {
	Updated time.Time // the #$ line: when the file was last updated
	Expires time.Time // the #@ line: when the file stops being valid
	Entries []Entry   // in increasing Start order, at least one
}

// ntpTime converts seconds since 1900 to a UTC time.
func ntpTime(secs uint64) time.Time {
	return time.Unix(int64(secs)-ntpEpochOffset, 0).UTC()
}

// ntpSeconds converts a UTC time back to seconds since 1900.
func ntpSeconds(t time.Time) uint64 { return uint64(t.Unix() + ntpEpochOffset) }

// parseNTP parses a field of seconds since 1900.
func parseNTP(field string) (uint64, error) {
	v, err := strconv.ParseUint(field, 10, 64)
	if err != nil || v > maxNTPSeconds {
		return 0, fmt.Errorf("NTP time %q: not a number of seconds up to %d", field, uint64(maxNTPSeconds))
	}
	return v, nil
}

// Load reads and parses the file at path.
func Load(path string) (*Schedule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("leap: read %s: %w", path, err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return s, nil
}

// Parse parses a leap-seconds.list and verifies its hash.
func Parse(data []byte) (*Schedule, error) {
	var (
		s                        Schedule
		hashInput                strings.Builder
		dataInput                strings.Builder
		updated, expires, hashed bool
		want                     [sha1.Size]byte
	)
	for i, raw := range bytes.Split(data, []byte("\n")) {
		lineNo := i + 1
		line := strings.Trim(string(raw), " \t\r")
		malformed := func(format string, args ...any) error {
			return fmt.Errorf("%w: line %d: %s", ErrMalformed, lineNo, fmt.Sprintf(format, args...))
		}
		switch {
		case strings.HasPrefix(line, "#$"), strings.HasPrefix(line, "#@"):
			fields := strings.Fields(line[2:])
			if len(fields) != 1 {
				return nil, malformed("%s wants one NTP time", line[:2])
			}
			v, err := parseNTP(fields[0])
			if err != nil {
				return nil, malformed("%v", err)
			}
			seen, when := &updated, &s.Updated
			if line[1] == '@' {
				seen, when = &expires, &s.Expires
			}
			if *seen {
				return nil, malformed("second %s line", line[:2])
			}
			*seen, *when = true, ntpTime(v)
			hashInput.WriteString(fields[0])
		case strings.HasPrefix(line, "#h"):
			if hashed {
				return nil, malformed("second #h line")
			}
			fields := strings.Fields(line[2:])
			if len(fields) != sha1.Size/4 {
				return nil, malformed("#h wants %d hex words, has %d", sha1.Size/4, len(fields))
			}
			for j, f := range fields {
				w, err := strconv.ParseUint(f, 16, 32)
				if err != nil {
					return nil, malformed("#h word %q: %v", f, err)
				}
				binary.BigEndian.PutUint32(want[4*j:], uint32(w))
			}
			hashed = true
		case strings.HasPrefix(line, "#"), line == "":
			// A comment or a blank line.
		default:
			if hashed {
				return nil, malformed("data after the #h line")
			}
			e, err := parseEntry(line, s.Entries)
			if err != nil {
				return nil, malformed("%v", err)
			}
			s.Entries = append(s.Entries, e)
			body, _, _ := strings.Cut(line, "#")
			fields := strings.Fields(body)
			dataInput.WriteString(fields[0] + fields[1])
		}
	}
	var missing []string
	for _, m := range []struct {
		ok   bool
		name string
	}{{updated, "#$ update time"}, {expires, "#@ expiry"}, {len(s.Entries) > 0, "leap second entries"}, {hashed, "#h hash"}} {
		if !m.ok {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: no %s", ErrIncomplete, strings.Join(missing, ", no "))
	}
	if !s.Expires.After(s.Updated) {
		return nil, fmt.Errorf("%w: expiry %v is not after the update %v", ErrMalformed, s.Expires, s.Updated)
	}
	if got := sha1.Sum([]byte(hashInput.String() + dataInput.String())); got != want {
		return nil, fmt.Errorf("%w: file says %x, data hashes to %x", ErrHashMismatch, want, got)
	}
	return &s, nil
}

// parseEntry parses one data line ("NTP-seconds TAI-UTC [# comment]") and
// checks it against the entries before it.
func parseEntry(line string, prev []Entry) (Entry, error) {
	body, _, _ := strings.Cut(line, "#")
	fields := strings.Fields(body)
	if len(fields) != 2 {
		return Entry{}, fmt.Errorf("data line %q: want NTP time and TAI-UTC", line)
	}
	secs, err := parseNTP(fields[0])
	if err != nil {
		return Entry{}, err
	}
	if secs%secondsPerDay != 0 {
		return Entry{}, fmt.Errorf("NTP time %d is not a UTC midnight", secs)
	}
	tai, err := strconv.ParseUint(fields[1], 10, 32)
	if err != nil || tai > maxTAIOffset {
		return Entry{}, fmt.Errorf("TAI-UTC %q: not a number of seconds up to %d", fields[1], maxTAIOffset)
	}
	e := Entry{Start: ntpTime(secs), TAIOffset: int(tai)}
	if n := len(prev); n > 0 {
		last := prev[n-1]
		if !e.Start.After(last.Start) {
			return Entry{}, fmt.Errorf("entry %v does not follow %v", e.Start, last.Start)
		}
		if d := e.TAIOffset - last.TAIOffset; d != 1 && d != -1 {
			return Entry{}, fmt.Errorf("TAI-UTC steps from %d to %d, not by one second", last.TAIOffset, e.TAIOffset)
		}
	}
	return e, nil
}

// Marshal writes s in leap-seconds.list format with a correct hash line, so
// that Parse(s.Marshal()) returns s. Tests use it to build variants of the
// real file (expired, with a negative leap second).
func (s *Schedule) Marshal() []byte {
	var b, h strings.Builder
	upd, exp := strconv.FormatUint(ntpSeconds(s.Updated), 10), strconv.FormatUint(ntpSeconds(s.Expires), 10)
	h.WriteString(upd + exp)
	fmt.Fprintf(&b, "#\tleap-seconds.list written by timenode\n#\n#$\t%s\n#@\t%s\n#\n", upd, exp)
	for _, e := range s.Entries {
		ntp, tai := strconv.FormatUint(ntpSeconds(e.Start), 10), strconv.Itoa(e.TAIOffset)
		h.WriteString(ntp + tai)
		fmt.Fprintf(&b, "%s\t%s\t# %s\n", ntp, tai, e.Start.Format("2 Jan 2006"))
	}
	sum := sha1.Sum([]byte(h.String()))
	b.WriteString("#\n#h\t")
	for i := 0; i < len(sum); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%08x", binary.BigEndian.Uint32(sum[i:]))
	}
	b.WriteByte('\n')
	return []byte(b.String())
}
