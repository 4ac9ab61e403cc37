package leap

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. Whatever it accepts must satisfy
// the invariants the schedule relies on and survive a Marshal round trip.
func FuzzParse(f *testing.F) {
	names, err := filepath.Glob(filepath.Join("testdata", "*.list"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("#$ 1\n#@ 2\n0 0\n#h 0 0 0 0 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if s != nil {
				t.Fatalf("Parse returned %+v with error %v", s, err)
			}
			return
		}
		if len(s.Entries) == 0 || !s.Expires.After(s.Updated) {
			t.Fatalf("accepted an incomplete list: %+v", s)
		}
		for i := 1; i < len(s.Entries); i++ {
			prev, cur := s.Entries[i-1], s.Entries[i]
			if !cur.Start.After(prev.Start) {
				t.Fatalf("entries out of order: %v then %v", prev, cur)
			}
			if d := cur.TAIOffset - prev.TAIOffset; d != 1 && d != -1 {
				t.Fatalf("TAI-UTC step %d between %v and %v", d, prev, cur)
			}
			if tai, _ := s.At(cur.Start); tai != cur.TAIOffset {
				t.Fatalf("At(%v) = %d, want %d", cur.Start, tai, cur.TAIOffset)
			}
		}
		again, err := Parse(s.Marshal())
		if err != nil {
			t.Fatalf("Parse(Marshal()) = %v", err)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip changed the schedule:\n got %+v\nwant %+v", again, s)
		}
	})
}
