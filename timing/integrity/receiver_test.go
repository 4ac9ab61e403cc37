package integrity

import (
	"os"
	"testing"
	"time"

	"github.com/aunsorm/timenode/timing/leap"
)

// goodSnap is a healthy epoch k seconds after t0: 9 GPS + 7 Galileo used,
// CN0 spread over 32–47 dB-Hz, leap 18 s, PPS time agreeing.
func goodSnap(k int) Snapshot {
	at := t0.Add(time.Duration(k) * time.Second)
	return Snapshot{
		At: at, Time: at, PPSTime: at, FixValid: true, FixDims: 3,
		Satellites: []Constellation{{"GPS", 11, 9}, {"Galileo", 8, 7}},
		CN0:        []float64{32, 35, 38, 40, 41, 43, 44, 45, 47, 36, 39, 42},
		HDOP:       0.8, PDOP: 1.4, LeapSeconds: 18, LeapKnown: true,
	}
}

func loadLeap(t *testing.T) LeapTable {
	t.Helper()
	b, err := os.ReadFile("../leap/testdata/leap-seconds.list")
	if err != nil {
		t.Fatal(err)
	}
	s, err := leap.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	// The test's dates must lie within the list's validity.
	s.Expires = t0.AddDate(10, 0, 0)
	return ScheduleTable{s}
}

func TestReceiverDetector(t *testing.T) {
	tests := []struct {
		name string
		// mutate changes epoch k (of 300) from k = 200 on.
		mutate func(s *Snapshot, k int)
		want   string // first reason expected from k = 200 on, "" none
	}{
		{name: "healthy", mutate: func(*Snapshot, int) {}},
		{name: "too few satellites", mutate: func(s *Snapshot, _ int) {
			s.Satellites = []Constellation{{"GPS", 5, 3}}
		}, want: ReasonTooFewSatellites},
		{name: "uniform strong CN0", mutate: func(s *Snapshot, _ int) {
			s.CN0 = []float64{48, 48.5, 47.8, 48.2, 48.1, 47.9, 48.3}
		}, want: ReasonCN0Uniform},
		{name: "jammed: CN0 drops", mutate: func(s *Snapshot, _ int) {
			for i := range s.CN0 {
				s.CN0[i] -= 15
			}
		}, want: ReasonCN0Drop},
		{name: "fix lost for a minute", mutate: func(s *Snapshot, _ int) {
			s.FixValid, s.Time = false, time.Time{}
		}, want: ReasonFixLost},
		{name: "2D fix from 3 satellites", mutate: func(s *Snapshot, _ int) {
			s.FixDims, s.Satellites = 2, []Constellation{{"GPS", 5, 3}}
		}},
		{name: "DOP high for 10 epochs only", mutate: func(s *Snapshot, k int) {
			if k < 210 {
				s.HDOP = 12
			}
		}},
		{name: "DOP out of bounds", mutate: func(s *Snapshot, _ int) { s.HDOP, s.PDOP = 12, 25 }, want: ReasonDOPHigh},
		{name: "time jumps 2 s", mutate: func(s *Snapshot, _ int) { s.Time = s.Time.Add(2 * time.Second) }, want: ReasonTimeMismatch},
		{name: "week rollover", mutate: func(s *Snapshot, _ int) { s.Time = s.Time.Add(-GPSWeekRollover) }, want: ReasonWeekRollover},
		{name: "week rollover without PPS time", mutate: func(s *Snapshot, _ int) {
			s.Time, s.PPSTime = s.Time.Add(-GPSWeekRollover), time.Time{}
		}, want: ReasonWeekRollover},
		{name: "wrong leap second", mutate: func(s *Snapshot, _ int) { s.LeapSeconds = 17 }, want: ReasonLeapMismatch},
		{name: "stuck time", mutate: func(s *Snapshot, _ int) {
			s.Time = t0.Add(200 * time.Second)
			s.PPSTime = time.Time{}
		}, want: ReasonTimeStuck},
		{name: "time backwards", mutate: func(s *Snapshot, k int) {
			if k >= 200 {
				s.Time = s.Time.Add(-30 * time.Second)
				s.PPSTime = time.Time{}
			}
		}, want: ReasonTimeBackwards},
		{name: "simulator mode", mutate: func(s *Snapshot, _ int) { s.Simulator = true }, want: ReasonSimulator},
		{name: "before the floor", mutate: func(s *Snapshot, _ int) {
			s.Time = time.Date(2011, 1, 1, 0, 0, 0, 0, time.UTC)
			s.PPSTime, s.LeapKnown = time.Time{}, false
		}, want: ReasonTimeBeforeFloor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewReceiverDetector(ReceiverConfig{Leap: loadLeap(t), NotBefore: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
			got := ""
			for k := range 300 {
				s := goodSnap(k)
				if k >= 200 {
					tc.mutate(&s, k)
				}
				evs := d.Observe(s)
				if k < 200 && len(evs) > 0 {
					t.Fatalf("evidence on a healthy epoch %d: %v", k, evs)
				}
				if len(evs) > 0 && got == "" {
					got = evs[0].Reason
				}
			}
			if got != tc.want {
				t.Fatalf("first reason %q, want %q", got, tc.want)
			}
		})
	}
}

// TestLeapAtBoundary: around a leap second the receiver may carry either
// value.
func TestLeapAtBoundary(t *testing.T) {
	lt := loadLeap(t)
	leapDay := time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)
	if n, ok := lt.GPSMinusUTC(leapDay); !ok || n != 18 {
		t.Fatalf("GPS−UTC on 2017-01-01 = %d %v, want 18", n, ok)
	}
	d := NewReceiverDetector(ReceiverConfig{Leap: lt})
	s := Snapshot{At: leapDay, Time: leapDay.Add(time.Second), FixValid: true, LeapSeconds: 17, LeapKnown: true}
	if evs := d.Observe(s); len(evs) != 0 {
		t.Fatalf("old leap value a second after the leap: %v", evs)
	}
}
