package gnss

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzFramerParse feeds arbitrary bytes through Framer, VerifyChecksum,
// Parser, Assembler and Tally. Invariants: nothing panics; every byte is
// accounted for (sentence, dropped, terminator or pending); sentences start
// with a delimiter and fit MaxSentence; and framing does not depend on how
// the stream is cut into reads.
func FuzzFramerParse(f *testing.F) {
	logs, _ := filepath.Glob(filepath.Join(captureDir, "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			f.Fatal(err)
		}
		b = StripComments(b)
		for len(b) > 0 { // seed in pieces of about 2 KiB, cut at a line end
			n := min(len(b), 2048)
			if i := bytes.IndexByte(b[n-1:], '\n'); i >= 0 {
				n += i
			} else {
				n = len(b)
			}
			f.Add(b[:n], uint8(7))
			b = b[n:]
		}
	}
	f.Add([]byte("$$GPRMC,,V,,,,,,,,,,N*53\r\n\x00\xb5b$GPZDA,1*00"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		whole := frameAll(data, len(data))
		step := int(cut)%64 + 1
		pieces := frameAll(data, step)
		if len(whole.sentences) != len(pieces.sentences) {
			t.Fatalf("%d sentences in one read, %d in reads of %d", len(whole.sentences), len(pieces.sentences), step)
		}
		for i := range whole.sentences {
			if !bytes.Equal(whole.sentences[i], pieces.sentences[i]) {
				t.Fatalf("sentence %d differs: %q vs %q", i, whole.sentences[i], pieces.sentences[i])
			}
		}
		if whole.accounted != uint64(len(data)) {
			t.Fatalf("accounted for %d of %d bytes", whole.accounted, len(data))
		}
		p := NewParser()
		var a Assembler
		var tally Tally
		at := time.Unix(0, 0)
		for _, s := range whole.sentences {
			if s[0] != '$' && s[0] != '!' || len(s) < 2 || len(s) > MaxSentence {
				t.Fatalf("bad frame %q", s)
			}
			tally.Add(s)
			if st, _ := VerifyChecksum(s); st == ChecksumBad {
				continue
			}
			at = at.Add(time.Millisecond)
			if parsed, err := p.Parse(s); err == nil {
				if fix, ok := a.Add(parsed, at); ok && fix.Valid && fix.Flags != 0 {
					t.Fatalf("valid Fix with flags %b", fix.Flags)
				}
			}
		}
		if fix, ok := a.Flush(); ok && fix.Valid && fix.Flags != 0 {
			t.Fatalf("valid Fix with flags %b", fix.Flags)
		}
		if tally.SentencesTotal != tally.ChecksumOK+tally.ChecksumBad+tally.ChecksumMissing {
			t.Fatalf("tally does not add up: %+v", tally)
		}
	})
}

// framed is the result of framing a stream.
type framed struct {
	sentences [][]byte
	accounted uint64
}

// frameAll frames data in reads of step bytes.
func frameAll(data []byte, step int) framed {
	var f Framer
	var out framed
	var sentBytes uint64
	emit := func(raw []byte, _ time.Time) {
		out.sentences = append(out.sentences, bytes.Clone(raw))
		sentBytes += uint64(len(raw))
	}
	for i := 0; i < len(data); i += max(step, 1) {
		f.Feed(data[i:min(i+max(step, 1), len(data))], time.Time{}, emit)
	}
	out.accounted = sentBytes + f.Dropped() + f.Terminators() + uint64(f.Pending())
	return out
}
