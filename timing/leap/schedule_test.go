package leap

import (
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

func loadReal(t *testing.T) *Schedule {
	t.Helper()
	s, err := Parse(readTestdata(t, "leap-seconds.list"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScheduleAt(t *testing.T) {
	real := loadReal(t)
	// A list with a negative leap second at the end of 2026, to exercise
	// STA_DEL; no such leap has been announced.
	withDelete := *real
	withDelete.Entries = append(append([]Entry(nil), real.Entries...),
		Entry{Start: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), TAIOffset: 36})
	withDelete.Expires = time.Date(2027, 6, 28, 0, 0, 0, 0, time.UTC)
	reparsed, err := Parse(withDelete.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	istanbul := time.FixedZone("TRT", 3*3600)
	tests := []struct {
		name     string
		s        *Schedule
		utc      time.Time
		wantTAI  int
		wantLeap clock.Leap
	}{
		{"before 1972", real, time.Date(1971, 12, 31, 12, 0, 0, 0, time.UTC), 0, clock.LeapNone},
		{"first entry", real, time.Date(1972, 1, 1, 0, 0, 0, 0, time.UTC), 10, clock.LeapNone},
		{"first leap pending", real, time.Date(1972, 6, 30, 0, 0, 0, 0, time.UTC), 10, clock.LeapInsert},
		{"2015-06-30", real, time.Date(2015, 6, 30, 8, 0, 0, 0, time.UTC), 35, clock.LeapInsert},
		{"2016-12-30: tomorrow, not today", real, time.Date(2016, 12, 30, 23, 59, 59, 0, time.UTC), 36, clock.LeapNone},
		{"2016-12-31 start of day", real, time.Date(2016, 12, 31, 0, 0, 0, 0, time.UTC), 36, clock.LeapInsert},
		{"2016-12-31 last instant", real, time.Date(2016, 12, 31, 23, 59, 59, 999999999, time.UTC), 36, clock.LeapInsert},
		{"2017-01-01 after the leap", real, time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC), 37, clock.LeapNone},
		{"2016-12-31 given in +03:00", real, time.Date(2017, 1, 1, 1, 0, 0, 0, istanbul), 36, clock.LeapInsert},
		{"2017-01-01 given in +03:00", real, time.Date(2017, 1, 1, 3, 0, 0, 0, istanbul), 37, clock.LeapNone},
		{"today", real, time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), 37, clock.LeapNone},
		{"negative leap pending", reparsed, time.Date(2026, 12, 31, 18, 0, 0, 0, time.UTC), 37, clock.LeapDelete},
		{"after the negative leap", reparsed, time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC), 36, clock.LeapNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tai, leap := tt.s.At(tt.utc)
			if tai != tt.wantTAI || leap != tt.wantLeap {
				t.Errorf("At(%v) = %d, %v; want %d, %v", tt.utc, tai, leap, tt.wantTAI, tt.wantLeap)
			}
		})
	}
}

func TestScheduleExpired(t *testing.T) {
	s := loadReal(t) // expires 2026-06-28T00:00:00Z
	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"when updated", time.Date(2025, 7, 7, 0, 0, 0, 0, time.UTC), false},
		{"last nanosecond", time.Date(2026, 6, 27, 23, 59, 59, 999999999, time.UTC), false},
		{"at expiry", time.Date(2026, 6, 28, 0, 0, 0, 0, time.UTC), true},
		{"months later", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Expired(tt.now); got != tt.want {
				t.Errorf("Expired(%v) = %v, want %v", tt.now, got, tt.want)
			}
		})
	}
}

func TestScheduleStatus(t *testing.T) {
	s := loadReal(t)
	tests := []struct {
		name string
		now  time.Time
		want Status
	}{
		{
			name: "expired file still answers, with a warning",
			now:  time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
			want: Status{TAIOffset: 37, Leap: clock.LeapNone, Expired: true, Expires: s.Expires},
		},
		{
			name: "valid file on a leap day",
			now:  time.Date(2016, 12, 31, 12, 0, 0, 0, time.UTC),
			want: Status{TAIOffset: 36, Leap: clock.LeapInsert, Expired: false, Expires: s.Expires},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Status(tt.now); got != tt.want {
				t.Errorf("Status(%v) = %+v, want %+v", tt.now, got, tt.want)
			}
		})
	}
}
