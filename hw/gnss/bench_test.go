package gnss

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchSentences returns the framed sentences of a real capture.
func benchSentences(b *testing.B, file string) [][]byte {
	data, err := os.ReadFile(filepath.Join(captureDir, file))
	if err != nil {
		b.Fatal(err)
	}
	var out [][]byte
	var f Framer
	f.Feed(StripComments(data), time.Time{}, func(raw []byte, _ time.Time) {
		out = append(out, append([]byte(nil), raw...))
	})
	return out
}

// BenchmarkParse measures the per-sentence path of the Receiver (checksum,
// go-nmea parse, epoch assembly) over a multi-GNSS capture; it reports
// sentences/s, and allocs/op is per sentence.
func BenchmarkParse(b *testing.B) {
	sentences := benchSentences(b, "unicore-um621.log")
	p := NewParser()
	var a Assembler
	at := time.Unix(0, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := sentences[i%len(sentences)]
		if st, _ := VerifyChecksum(s); st != ChecksumOK {
			continue
		}
		if parsed, err := p.Parse(s); err == nil {
			a.Add(parsed, at)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sentences/s")
}

// BenchmarkFramer measures framing alone, in bytes/s.
func BenchmarkFramer(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(captureDir, "unicore-um621.log"))
	if err != nil {
		b.Fatal(err)
	}
	data = StripComments(data)
	var f Framer
	n := 0
	emit := func(raw []byte, _ time.Time) { n++ }
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f.Feed(data, time.Time{}, emit)
	}
}
