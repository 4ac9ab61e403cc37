package ppssync

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzParseLine feeds arbitrary text to ParseLine. Whatever it accepts
// must format back to a line that parses to the same message, alone or
// behind noise and before a CRLF.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"PPSSYNC/1 REQ 1 2",
		"PPSSYNC/1 RSP 1 2 3 4\r\n",
		"Warning: xPPSSYNC/1 REQ 18446744073709551615 -9223372036854775808",
		"PPSSYNC/1  RSP +1 +2 -3 4 ",
		"PPSSYNC/1",
		"PPSSYNC/1 REQ",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m, err := ParseLine(line)
		if err != nil {
			return
		}
		if m.Kind != Request && m.Kind != Response {
			t.Fatalf("ParseLine(%q) accepted kind %v", line, m.Kind)
		}
		if m.Kind == Request && (m.T2 != 0 || m.T3 != 0) {
			t.Fatalf("ParseLine(%q): request with host times %+v", line, m)
		}
		s := m.String()
		if strings.ContainsAny(s, "\r\n") || len(s) > MaxLine {
			t.Fatalf("%+v formats to %q", m, s)
		}
		for _, again := range []string{s, "noise " + s + "\r\n"} {
			back, err := ParseLine(again)
			if err != nil || back != m {
				t.Fatalf("ParseLine(%q) = %+v, %v; want %+v (from %q)", again, back, err, m, line)
			}
		}
	})
}

// FuzzServe feeds an arbitrary stream to Serve: it must end cleanly at
// EOF and answer exactly the requests on lines that fit in MaxLine, in
// order, with nothing but well-formed responses.
func FuzzServe(f *testing.F) {
	f.Add([]byte("PPSSYNC/1 REQ 1 2\nbanner\nPPSSYNC/1 REQ 2 3"))
	f.Add([]byte("\r\n\x00PPSSYNC/1 RSP 1 2 3 4\nPPSSYNC/1 REQ 9 -1\r\n"))
	f.Add(append(bytes.Repeat([]byte("a"), MaxLine+3), "\nPPSSYNC/1 REQ 5 5\n"...))
	f.Fuzz(func(t *testing.T, input []byte) {
		var want []Message
		for _, line := range strings.Split(string(input), "\n") {
			if len(line) > MaxLine {
				continue
			}
			if m, err := ParseLine(line); err == nil && m.Kind == Request {
				want = append(want, m)
			}
		}
		var out bytes.Buffer
		n := int64(0)
		now := func() time.Time { n++; return time.Unix(0, 1951000000000000000+n) }
		if err := Serve(context.Background(), bytes.NewReader(input), &out, now); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if out.Len() == 0 {
			got = nil
		}
		if len(got) != len(want) {
			t.Fatalf("%d responses, want %d:\n%s", len(got), len(want), out.String())
		}
		for i, line := range got {
			m, err := ParseLine(line)
			if err != nil || m.Kind != Response || m.Seq != want[i].Seq || m.T1 != want[i].T1 || m.T3 <= m.T2 {
				t.Fatalf("response %d = %q (%v), want an answer to %+v", i, line, err, want[i])
			}
		}
	})
}
