package gnss

import (
	"bytes"
	"strings"
)

// Tally counts sentences by the rules in testdata/nmea/README.md, the rules
// expected.json was computed with. It works on framed sentences (the output
// of a Framer), so the same figures come out of a file, a pty or a serial
// port. The zero value is ready to use.
type Tally struct {
	SentencesTotal  int
	ChecksumOK      int
	ChecksumBad     int
	ChecksumMissing int
	// ChecksumLowercase counts ChecksumOK sentences written in lower-case hex.
	ChecksumLowercase int
	// RMCValid and RMCInvalid count checksum-valid RMC by status "A" or not.
	RMCValid, RMCInvalid int
	// ZDA counts checksum-valid ZDA sentences.
	ZDA int
	// FirstUTC and LastUTC are the first and last date+time named by a
	// checksum-valid RMC (any status) or ZDA, in stream order, formatted by
	// FormatUTC; empty if none.
	FirstUTC, LastUTC string
	// Talkers maps a talker ("GP", "GN", ...; "P" for proprietary) to the
	// number of checksum-valid sentences.
	Talkers map[string]int
	// Types maps the full address field ("GNRMC", "PGRME") to the number of
	// checksum-valid sentences.
	Types map[string]int
}

// Add counts one framed sentence (delimiter included, no terminator).
func (t *Tally) Add(raw []byte) {
	t.SentencesTotal++
	st, lower := VerifyChecksum(raw)
	switch st {
	case ChecksumBad:
		t.ChecksumBad++
		return
	case ChecksumMissing:
		t.ChecksumMissing++
		return
	}
	t.ChecksumOK++
	if lower {
		t.ChecksumLowercase++
	}
	body := string(raw[1:bytes.IndexByte(raw, '*')])
	fields := strings.Split(body, ",")
	addr := fields[0]
	if t.Talkers == nil {
		t.Talkers = map[string]int{}
		t.Types = map[string]int{}
	}
	t.Talkers[TalkerOf(addr)]++
	t.Types[addr]++
	field := func(i int) string {
		if i < len(fields) {
			return fields[i]
		}
		return ""
	}
	switch {
	case isTwoLetters(addr, "RMC"):
		if field(2) == "A" {
			t.RMCValid++
		} else {
			t.RMCInvalid++
		}
		tod, okT := ParseTimeOfDay(field(1))
		d, okD := ParseDDMMYY(field(9))
		if okT && okD {
			t.stamp(FormatUTC(d, tod))
		}
	case isTwoLetters(addr, "ZDA"):
		t.ZDA++
		tod, okT := ParseTimeOfDay(field(1))
		d, okD := ParseZDADate(field(2), field(3), field(4))
		if okT && okD {
			t.stamp(FormatUTC(d, tod))
		}
	}
}

func (t *Tally) stamp(utc string) {
	if t.FirstUTC == "" {
		t.FirstUTC = utc
	}
	t.LastUTC = utc
}

// TalkerOf returns the talker of an address field: "P" for any proprietary
// address (starting with "P"), else its first two characters.
func TalkerOf(addr string) string {
	if strings.HasPrefix(addr, "P") {
		return "P"
	}
	if len(addr) > 2 {
		return addr[:2]
	}
	return addr
}

// isTwoLetters reports whether addr is two letters followed by typ.
func isTwoLetters(addr, typ string) bool {
	if len(addr) != 2+len(typ) || addr[2:] != typ {
		return false
	}
	for i := 0; i < 2; i++ {
		c := addr[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}
