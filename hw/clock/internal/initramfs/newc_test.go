package initramfs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strconv"
	"testing"
)

// member is one entry as parsed back by readNewc.
type member struct {
	name                 string
	mode, rmajor, rminor uint64
	data                 string
}

// readNewc parses a newc archive independently of Writer, checking the
// magic, alignment and trailer the kernel's unpacker insists on.
func readNewc(t *testing.T, b []byte) []member {
	t.Helper()
	var out []member
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("header at offset %d is not 4-byte aligned", off)
		}
		if len(b)-off < 110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at offset %d", off)
		}
		field := func(i int) uint64 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("field %d at offset %d: %v", i, off, err)
			}
			return v
		}
		mode, size, rmajor, rminor, namesize := field(1), field(6), field(9), field(10), field(11)
		nameStart := off + 110
		name := string(b[nameStart : nameStart+int(namesize)-1])
		if b[nameStart+int(namesize)-1] != 0 {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		dataStart := (nameStart + int(namesize) + 3) &^ 3
		if name == trailerName {
			if end := dataStart; end != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-end)
			}
			return out
		}
		out = append(out, member{name, mode, rmajor, rminor, string(b[dataStart : dataStart+int(size)])})
		off = (dataStart + int(size) + 3) &^ 3
	}
}

func TestWriterGoldenHeader(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.File("/init", 0o755, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "070701" + "00000001" + "000081ed" + "00000000" + "00000000" + "00000001" + "00000000" +
		"00000002" + "00000000" + "00000000" + "00000000" + "00000000" + "00000005" + "00000000" +
		"init\x00" + "\x00" + "hi\x00\x00" +
		"070701" + "00000000" + "00000000" + "00000000" + "00000000" + "00000001" + "00000000" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000000" + "0000000b" + "00000000" +
		"TRAILER!!!\x00" + "\x00\x00\x00"
	if got := buf.String(); got != want {
		t.Errorf("archive:\n got %q\nwant %q", got, want)
	}
}

func TestWriteGzipRoundTrip(t *testing.T) {
	entries := []Entry{
		{Name: "dev", Mode: 0o755, Dir: true},
		{Name: "dev/console", Mode: 0o600, CharDev: true, Major: 5, Minor: 1},
		{Name: "proc", Mode: 0o555, Dir: true},
		{Name: "init", Mode: 0o755, Data: []byte("#!/bin/true\n")},
		{Name: "empty", Mode: 0o644},
		{Name: "three", Mode: 0o644, Data: []byte("abc")},
	}
	var buf bytes.Buffer
	if err := WriteGzip(&buf, entries); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	got := readNewc(t, raw)
	want := []member{
		{"dev", modeDir | 0o755, 0, 0, ""},
		{"dev/console", modeCharDev | 0o600, 5, 1, ""},
		{"proc", modeDir | 0o555, 0, 0, ""},
		{"init", modeRegular | 0o755, 0, 0, "#!/bin/true\n"},
		{"empty", modeRegular | 0o644, 0, 0, ""},
		{"three", modeRegular | 0o644, 0, 0, "abc"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d members %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("member %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestWriterRejects(t *testing.T) {
	tests := []struct {
		name string
		add  func(w *Writer) error
	}{
		{"missing parent", func(w *Writer) error { return w.File("dev/console", 0o600, nil) }},
		{"duplicate", func(w *Writer) error {
			if err := w.Dir("dev", 0o755); err != nil {
				return nil
			}
			return w.Dir("/dev", 0o755)
		}},
		{"dot-dot", func(w *Writer) error { return w.File("../etc/passwd", 0o644, nil) }},
		{"unclean", func(w *Writer) error { return w.File("a//b", 0o644, nil) }},
		{"empty", func(w *Writer) error { return w.File("", 0o644, nil) }},
		{"trailer name", func(w *Writer) error { return w.File(trailerName, 0o644, nil) }},
		{"after close", func(w *Writer) error {
			if err := w.Close(); err != nil {
				return nil
			}
			return w.Dir("x", 0o755)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.add(NewWriter(io.Discard)); err == nil {
				t.Error("accepted, want an error")
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterPropagatesWriteErrors(t *testing.T) {
	w := NewWriter(failWriter{})
	if err := w.Dir("dev", 0o755); err == nil {
		t.Fatal("Dir on a failing writer succeeded")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed write succeeded")
	}
}
