package gnss

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzSky feeds whatever decodes out of arbitrary bytes to a Sky.
// Invariants: nothing panics; counts stay consistent (tracked within in
// view, CN0 within 0-99, used and in view non-negative); the view is in
// the documented order; and after StaleAfter nothing but the antenna is
// left.
func FuzzSky(f *testing.F) {
	for _, name := range []string{"unicore-um621.log", "telit-pls83-w.log", "st-teseo-liv3f.log", "jl-micro-jlt.log", "isync.log"} {
		b, err := os.ReadFile(filepath.Join(captureDir, name))
		if err != nil {
			f.Fatal(err)
		}
		b = StripComments(b)
		f.Add(b[:min(4096, len(b))], uint8(10))
	}
	f.Add([]byte("$GPGSV,3,1,09,01,40,083,46*7C\r\n$GPTXT,01,01,02,ANTSTATUS=OK*3B\r\n$GNGSA,A,1,,,,,,,,,,,,,,,*00\r\n"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, stepMs uint8) {
		p := NewParser()
		var f Framer
		k := Sky{StaleAfter: 5 * time.Second}
		t0 := time.Unix(1e9, 0)
		at := t0
		f.Feed(data, t0, func(raw []byte, _ time.Time) {
			s, err := p.Parse(raw)
			if err != nil {
				return
			}
			at = at.Add(time.Duration(stepMs) * time.Millisecond)
			k.Add(s, at)
		})
		v := k.View(at)
		order := map[string]int{}
		for i, c := range Constellations() {
			order[c] = i
		}
		prev := -1
		for _, c := range v.Constellations {
			if c.Tracked > c.InView || c.InView < 0 || c.Used < 0 || c.CN0Max < 0 || c.CN0Max > 99 || c.CN0Mean > c.CN0Max {
				t.Fatalf("inconsistent %+v", c)
			}
			if order[c.Name] <= prev {
				t.Fatalf("constellations out of order: %+v", v.Constellations)
			}
			prev = order[c.Name]
		}
		if n := len(v.Satellites); n > maxSkyKeys*maxGSVParts*4 {
			t.Fatalf("%d satellites: the model is unbounded", n)
		}
		late := k.View(at.Add(5*time.Second + time.Nanosecond))
		if len(late.Constellations) != 0 || late.FixType != FixUnknown || late.SatellitesUsed != -1 || late.Antenna != v.Antenna {
			t.Fatalf("after StaleAfter: %+v", late)
		}
	})
}

// FuzzParseAntennaStatus: any text gives a known state or ok false,
// never a state outside the list.
func FuzzParseAntennaStatus(f *testing.F) {
	for _, s := range []string{"ANTSTATUS=OK", "ANTSTATUS=OPEN", "ANTENNA SHORT", "ANTSTATUS=", "ANTENNA", "antstatus=ok\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		a, ok := ParseAntennaStatus(msg)
		switch {
		case ok && a != AntennaOK && a != AntennaOpen && a != AntennaShort:
			t.Fatalf("%q: ok with %q", msg, a)
		case !ok && a != AntennaUnknown:
			t.Fatalf("%q: not ok but %q", msg, a)
		}
	})
}
