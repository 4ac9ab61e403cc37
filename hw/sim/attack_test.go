package sim

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/adrianmo/go-nmea"
	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/hw/gnss"
)

// TestEpochFaults parses faulted epochs back as the daemon does and
// checks each fault shows, and only it.
func TestEpochFaults(t *testing.T) {
	ts := time.Date(2026, 11, 23, 9, 5, 7, 0, time.UTC)
	tests := []struct {
		name        string
		faults      Faults
		wantDate    time.Time
		wantUniform bool
	}{
		{"healthy", Faults{}, ts, false},
		{"uniform CN0", Faults{UniformCN0: true}, ts, true},
		{"week rollover", Faults{WeekRollover: true}, time.Date(2007, 4, 9, 9, 5, 7, 0, time.UTC), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k gnss.Sky
			p := gnss.NewParser()
			var date time.Time
			for _, l := range strings.Split(strings.TrimSuffix(string(EpochWith(ts, Position{Lat: 41, Lon: 29, Alt: 40}, true, tt.faults)), "\r\n"), "\r\n") {
				s, err := p.Parse([]byte(l))
				if err != nil {
					t.Fatalf("%s: %v", l, err)
				}
				if z, ok := s.(nmea.ZDA); ok {
					date = time.Date(int(z.Year), time.Month(z.Month), int(z.Day), int(z.Time.Hour), int(z.Time.Minute), int(z.Time.Second), 0, time.UTC)
				}
				k.Add(s, ts)
			}
			if !date.Equal(tt.wantDate) {
				t.Errorf("ZDA names %v, want %v", date, tt.wantDate)
			}
			var cn0 []int
			for _, s := range k.View(ts).Satellites {
				if s.CN0 > 0 {
					cn0 = append(cn0, s.CN0)
				}
			}
			lo, hi := cn0[0], cn0[0]
			for _, c := range cn0 {
				lo, hi = min(lo, c), max(hi, c)
			}
			if uniform := lo == hi && lo >= 44; uniform != tt.wantUniform || len(cn0) != len(sky) {
				t.Errorf("CN0 of %d satellites from %d to %d dB-Hz, want uniform %v", len(cn0), lo, hi, tt.wantUniform)
			}
		})
	}
}

func TestReceiverMovePosition(t *testing.T) {
	r := NewReceiver(nil, hostClock{}, ReceiverConfig{Position: Position{Lat: 41, Lon: 29, Alt: 40}})
	r.MovePosition(1000, 2000, 30)
	p, _ := r.position()
	north := (p.Lat - 41) * 111320
	east := (p.Lon - 29) * 111320 * math.Cos(p.Lat*math.Pi/180)
	if math.Abs(north-2000) > 1 || math.Abs(east-1000) > 1 || p.Alt != 70 {
		t.Errorf("moved to %+v: %.1f m north, %.1f m east", p, north, east)
	}
	r.MovePosition(0, 0, 0)
	if p, _ := r.position(); p != (Position{Lat: 41, Lon: 29, Alt: 40}) {
		t.Errorf("moved back to %+v", p)
	}
}

func TestPPSShiftAndDrag(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	ref := clocktest.NewManual(t0)
	p := NewPPS(ref, clocktest.NewOscillator(ref, clocktest.OscillatorConfig{}), PPSConfig{})
	steps := []struct {
		do   func()
		at   time.Duration // after t0
		want time.Duration
	}{
		{func() {}, 0, 0},
		{func() { p.Shift(time.Millisecond) }, 10 * time.Second, time.Millisecond},
		{func() { p.Shift(-1500 * time.Microsecond) }, 20 * time.Second, -500 * time.Microsecond},
		{func() { p.Drag(100) }, 30 * time.Second, -500 * time.Microsecond},
		{func() {}, 40 * time.Second, -499 * time.Microsecond},
		{func() { p.Drag(0) }, 60 * time.Second, -497 * time.Microsecond},
		{func() { p.Reset() }, 70 * time.Second, 0},
	}
	for i, s := range steps {
		ref.Set(t0.Add(s.at))
		s.do()
		if got := p.Phase(ref.Now()); got != s.want {
			t.Errorf("step %d at %v: phase %v, want %v", i, s.at, got, s.want)
		}
	}
}
