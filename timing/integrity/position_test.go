package integrity

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// offsetFix moves f by east, north, up metres (flat-earth, fine for the
// few kilometres a test moves).
func offsetFix(f Fix, east, north, up float64) Fix {
	const r = 6371e3
	f.LatDeg += north / r * 180 / math.Pi
	f.LonDeg += east / (r * math.Cos(f.LatDeg*math.Pi/180)) * 180 / math.Pi
	f.AltM += up
	return f
}

func TestECEFRoundTrip(t *testing.T) {
	for _, f := range []Fix{{LatDeg: 48.15, LonDeg: 11.58, AltM: 500}, {LatDeg: -33.9, LonDeg: -70.6, AltM: 2500}, {LatDeg: 0, LonDeg: 179.9, AltM: -20}} {
		g := fromECEF(f.ECEF())
		p, q := f.ECEF(), g.ECEF()
		if d := math.Hypot(math.Hypot(p[0]-q[0], p[1]-q[1]), p[2]-q[2]); d > 1e-3 {
			t.Fatalf("%+v → %+v: %g m apart", f, g, d)
		}
	}
}

func TestPositionDetector(t *testing.T) {
	home := Fix{LatDeg: 48.1500, LonDeg: 11.5800, AltM: 520, Valid: true}
	tests := []struct {
		name string
		// move returns the true antenna offset (east, north, up) at fix k
		// after the survey.
		move       func(k int) (float64, float64, float64)
		wildEvery  int // one wild 200 m fix every n fixes
		wantReason string
		within     int // fixes after the survey
	}{
		{name: "still", move: func(int) (float64, float64, float64) { return 0, 0, 0 }},
		{name: "still with a wild fix every 500", move: func(int) (float64, float64, float64) { return 0, 0, 0 }, wildEvery: 500},
		{name: "jump 2 km east", move: func(k int) (float64, float64, float64) {
			if k >= 1000 {
				return 2000, 0, 0
			}
			return 0, 0, 0
		}, wantReason: ReasonPositionJump, within: 1003},
		{name: "altitude jump 300 m", move: func(k int) (float64, float64, float64) {
			if k >= 1000 {
				return 0, 0, 300
			}
			return 0, 0, 0
		}, wantReason: ReasonPositionJump, within: 1003},
		{name: "drift 0.05 m/s north", move: func(k int) (float64, float64, float64) {
			if k >= 1000 {
				return 0, 0.05 * float64(k-1000), 0
			}
			return 0, 0, 0
		}, wantReason: ReasonPositionDrift, within: 1000 + 1000 + 60},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			d := NewPositionDetector(PositionConfig{SurveyFixes: 600})
			var ge, gn, gu float64 // Gauss–Markov receiver error, 300 s
			fix := func(e, n, u float64) Fix {
				a := math.Exp(-1.0 / 300)
				ge = a*ge + math.Sqrt(1-a*a)*2*rng.NormFloat64()
				gn = a*gn + math.Sqrt(1-a*a)*2*rng.NormFloat64()
				gu = a*gu + math.Sqrt(1-a*a)*4*rng.NormFloat64()
				return offsetFix(home, e+ge, n+gn, u+gu)
			}
			for k := range 600 {
				if evs := d.Observe(t0.Add(time.Duration(k)*time.Second), fix(0, 0, 0)); len(evs) > 0 {
					t.Fatalf("evidence during survey: %v", evs)
				}
			}
			held, ok := d.Held()
			if !ok {
				t.Fatal("survey did not finish")
			}
			e, n, u := enu(home, held.ECEF())
			if math.Hypot(e, n) > 5 || math.Abs(u) > 10 {
				t.Fatalf("surveyed %.1f m, %.1f m up from the antenna", math.Hypot(e, n), u)
			}
			first, reason := -1, ""
			for k := range 3600 {
				f := fix(tc.move(k))
				if tc.wildEvery > 0 && k%tc.wildEvery == 0 {
					f = offsetFix(f, 200, 0, 0)
				}
				evs := d.Observe(t0.Add(time.Duration(600+k)*time.Second), f)
				if len(evs) > 0 && first < 0 {
					first, reason = k, evs[0].Reason
				}
			}
			if tc.wantReason == "" {
				if first >= 0 {
					t.Fatalf("false alarm %s at fix %d", reason, first)
				}
				return
			}
			if first < 0 || first > tc.within || reason != tc.wantReason {
				t.Fatalf("first alarm %q at fix %d, want %q by %d", reason, first, tc.wantReason, tc.within)
			}
		})
	}
}

func TestPositionKnownAndInvalid(t *testing.T) {
	home := Fix{LatDeg: 10, LonDeg: 20, AltM: 30, Valid: true}
	d := NewPositionDetector(PositionConfig{Known: &home, Radius: 10})
	if _, ok := d.Held(); !ok {
		t.Fatal("known position not held")
	}
	far := offsetFix(home, 100, 0, 0)
	bad := far
	bad.Valid = false
	for k := range 5 {
		if evs := d.Observe(t0, bad); evs != nil {
			t.Fatalf("invalid fix %d judged: %v", k, evs)
		}
	}
	var got []Evidence
	for range 3 {
		got = d.Observe(t0, far)
	}
	if len(got) != 1 || got[0].Reason != ReasonPositionJump {
		t.Fatalf("got %v", got)
	}
}
