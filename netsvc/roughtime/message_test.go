package roughtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// refDecode is a second, deliberately different reading of the wire
// format (a map, checks in another order), the oracle ParseMessage is
// compared with.
func refDecode(b []byte) (map[uint32][]byte, []uint32, bool) {
	if len(b)%4 != 0 || len(b) < 4 {
		return nil, nil, false
	}
	words := make([]uint32, len(b)/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	n := int(words[0])
	if n == 0 {
		return map[uint32][]byte{}, nil, len(words) == 1
	}
	if n > len(words)/2 {
		return nil, nil, false
	}
	body := b[8*n:]
	out := map[uint32][]byte{}
	var order []uint32
	for i := range n {
		tag := words[n+i]
		lo, hi := 0, len(body)
		if i > 0 {
			lo = int(words[i])
		}
		if i < n-1 {
			hi = int(words[i+1])
		}
		if lo%4 != 0 || hi%4 != 0 || lo > hi || hi > len(body) {
			return nil, nil, false
		}
		if _, dup := out[tag]; dup || (i > 0 && tag < order[i-1]) {
			return nil, nil, false
		}
		out[tag] = body[lo:hi]
		order = append(order, tag)
	}
	return out, order, true
}

func enc(t testing.TB, fields ...Field) []byte {
	t.Helper()
	b, err := mustEncode(fields...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func words(ws ...uint32) []byte {
	var b []byte
	for _, w := range ws {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

func TestParseMessage(t *testing.T) {
	a, b, c := uint32(MakeTag("AAAA")), uint32(MakeTag("BBBB")), uint32(MakeTag("CCCC"))
	tests := []struct {
		name string
		in   []byte
		want Message // nil: must be refused
	}{
		{"empty", words(0), Message{}},
		{"empty with trailing bytes", words(0, 0), nil},
		{"one tag", words(1, a, 7), Message{{Tag(a), words(7)}}},
		{"one tag empty value", words(1, a), Message{{Tag(a), []byte{}}}},
		{"three tags", words(3, 4, 4, a, b, c, 1, 2), Message{{Tag(a), words(1)}, {Tag(b), nil}, {Tag(c), words(2)}}},
		{"too short", []byte{1, 0}, nil},
		{"not multiple of 4", append(words(1, a), 0), nil},
		{"count beyond length", words(3, 0, 0, a, b), nil},
		{"huge count", words(0xffffffff), nil},
		{"tags out of order", words(2, 0, b, a), nil},
		{"repeated tag", words(2, 0, a, a), nil},
		{"offset not multiple of 4", words(2, 2, a, b, 0), nil},
		{"offset past end", words(2, 8, a, b, 0), nil},
		{"offsets decreasing", words(3, 4, 0, a, b, c, 0), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMessage(tc.in)
			_, _, refOK := refDecode(tc.in)
			if refOK != (tc.want != nil) {
				t.Fatalf("test table disagrees with the reference decoder")
			}
			if tc.want == nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("accepted (%v), want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m) != len(tc.want) {
				t.Fatalf("got %d fields, want %d", len(m), len(tc.want))
			}
			for i := range m {
				if m[i].Tag != tc.want[i].Tag || !bytes.Equal(m[i].Value, tc.want[i].Value) {
					t.Fatalf("field %d: got %v %x, want %v %x", i, m[i].Tag, m[i].Value, tc.want[i].Tag, tc.want[i].Value)
				}
			}
			out, err := m.Encode()
			if err != nil || !bytes.Equal(out, tc.in) {
				t.Fatalf("re-encoding gives %x (%v), want %x", out, err, tc.in)
			}
		})
	}
}

func TestNewMessage(t *testing.T) {
	m, err := NewMessage(Field{TagSREP, words(1)}, Field{TagSIG, words(2, 3)}, Field{TagNONC, nil})
	if err != nil {
		t.Fatal(err)
	}
	if m[0].Tag != TagSIG || m[1].Tag != TagNONC || m[2].Tag != TagSREP {
		t.Fatalf("not sorted by tag value: %v", m)
	}
	if v, ok := m.Get(TagSIG); !ok || !bytes.Equal(v, words(2, 3)) {
		t.Fatal("Get(SIG)")
	}
	if _, ok := m.Get(TagPATH); ok {
		t.Fatal("Get of a missing tag")
	}
	if b, _ := m.Encode(); len(b) != m.Size() {
		t.Fatalf("Size %d, encoding %d", m.Size(), len(b))
	}
	for _, bad := range [][]Field{
		{{TagSIG, words(1)}, {TagSIG, words(2)}},
		{{TagSIG, []byte{1, 2, 3}}},
	} {
		if _, err := NewMessage(bad...); err == nil {
			t.Fatalf("NewMessage(%v) accepted", bad)
		}
	}
	if _, err := (Message{{TagSREP, nil}, {TagSIG, nil}}).Encode(); err == nil {
		t.Fatal("unsorted Message encoded")
	}
	if got := TagSIG.String(); got != `"SIG\x00"` {
		t.Fatalf("TagSIG.String() = %s", got)
	}
}

// FuzzParseMessage checks that ParseMessage agrees with the reference
// decoder on every input, that an accepted input is exactly the encoding
// of what was parsed, and that fields built from the input round-trip.
func FuzzParseMessage(f *testing.F) {
	f.Add(words(0))
	f.Add(words(1, uint32(TagNONC), 1, 2))
	f.Add(words(2, 4, uint32(TagSIG), uint32(TagNONC), 1, 2))
	f.Add(words(2, 2, uint32(TagNONC), uint32(TagSIG), 1, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		ref, order, refOK := refDecode(b)
		if (err == nil) != refOK {
			t.Fatalf("ParseMessage err=%v, reference ok=%v", err, refOK)
		}
		if err == nil {
			if len(m) != len(order) {
				t.Fatalf("%d fields, reference %d", len(m), len(order))
			}
			for i, f := range m {
				if uint32(f.Tag) != order[i] || !bytes.Equal(f.Value, ref[order[i]]) {
					t.Fatalf("field %d differs from the reference", i)
				}
			}
			out, err := m.Encode()
			if err != nil || !bytes.Equal(out, b) {
				t.Fatalf("accepted input is not canonical: re-encoded %x (%v)", out, err)
			}
		}
		// Cut the input into fields of its own choosing; whatever
		// NewMessage accepts must come back unchanged.
		var fields []Field
		for rest := b; len(rest) >= 5; {
			tag := Tag(binary.LittleEndian.Uint32(rest))
			n := int(rest[4]%8) * 4
			rest = rest[5:]
			n = min(n, len(rest)/4*4)
			fields = append(fields, Field{tag, rest[:n]})
			rest = rest[n:]
		}
		built, err := NewMessage(fields...)
		if err != nil {
			return // repeated tags
		}
		wire, err := built.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseMessage(wire)
		if err != nil || len(back) != len(built) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range back {
			if back[i].Tag != built[i].Tag || !bytes.Equal(back[i].Value, built[i].Value) {
				t.Fatalf("round trip changed field %d", i)
			}
		}
	})
}
