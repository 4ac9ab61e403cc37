package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNextSecond(t *testing.T) {
	day := time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)
	sec := func(s int64) int64 { return day.Unix() + s }
	at := func(s float64) time.Time { return day.Add(time.Duration(s * float64(time.Second))) }
	tests := []struct {
		name     string
		host     time.Time
		offset   time.Duration
		last     int64
		haveLast bool
		want     int64
	}{
		{"mid-second", at(7.25), 0, 0, false, sec(8)},
		{"on the second", at(7), 0, 0, false, sec(7)},
		{"just after the second", at(7.000000001), 0, 0, false, sec(8)},
		{"positive offset still ahead", at(7.25), 500 * time.Millisecond, 0, false, sec(7)},
		{"positive offset passed", at(7.75), 500 * time.Millisecond, 0, false, sec(8)},
		{"negative offset ahead", at(7.25), -200 * time.Millisecond, 0, false, sec(8)},
		{"negative offset passed", at(7.9), -200 * time.Millisecond, 0, false, sec(9)},
		{"after the last pulse", at(8.000050), 0, sec(8), true, sec(9)},
		{"anchor moved back past the last pulse", at(7.999), 0, sec(8), true, sec(9)},
		{"last pulse long ago", at(20.5), 0, sec(8), true, sec(21)},
		{"before 1970", time.Unix(-3, -250_000_000), 0, 0, false, -3},
		{"before 1970 on the second", time.Unix(-3, 0), 0, 0, false, -3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nextSecond(tt.host, tt.offset, tt.last, tt.haveLast)
			if got != tt.want {
				t.Fatalf("nextSecond = %d (%s), want %d (%s)", got, pulseTime(got, 0), tt.want, pulseTime(tt.want, 0))
			}
			if p := pulseTime(got, tt.offset); p.Before(tt.host) {
				t.Fatalf("pulse time %s is before %s", p, tt.host)
			}
		})
	}
}

func TestSleepUntil(t *testing.T) {
	tests := []struct {
		name       string
		deadline   time.Duration
		spin       time.Duration
		over       map[int]time.Duration
		wantSleeps []time.Duration
		maxLate    time.Duration
	}{
		{"coarse then spin", 11 * time.Second, 2 * time.Millisecond, nil, []time.Duration{998 * time.Millisecond}, time.Microsecond},
		{"within the spin window: no sleep", 10*time.Second + time.Millisecond, 2 * time.Millisecond, nil, nil, time.Microsecond},
		{"already due", 9 * time.Second, 2 * time.Millisecond, nil, nil, time.Second + time.Microsecond},
		{"timer woke early: sleeps again", 11 * time.Second, 2 * time.Millisecond, map[int]time.Duration{0: -500 * time.Millisecond},
			[]time.Duration{998 * time.Millisecond, 500 * time.Millisecond}, time.Microsecond},
		{"timer overslept past the deadline", 11 * time.Second, 2 * time.Millisecond, map[int]time.Duration{0: 30 * time.Millisecond},
			[]time.Duration{998 * time.Millisecond}, 28*time.Millisecond + time.Microsecond},
		{"no spin", 11 * time.Second, 0, nil, []time.Duration{time.Second}, time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClock{now: 10 * time.Second, tick: time.Microsecond, over: tt.over}
			if err := sleepUntil(context.Background(), c, tt.deadline, tt.spin); err != nil {
				t.Fatal(err)
			}
			woke := c.peek()
			if woke < tt.deadline {
				t.Fatalf("woke at %v, before the deadline %v", woke, tt.deadline)
			}
			if late := woke - tt.deadline; late > tt.maxLate+time.Microsecond {
				t.Fatalf("woke %v late, want at most %v", late, tt.maxLate)
			}
			if len(c.sleeps) != len(tt.wantSleeps) {
				t.Fatalf("sleeps %v, want %v", c.sleeps, tt.wantSleeps)
			}
			for i := range c.sleeps {
				if d := c.sleeps[i] - tt.wantSleeps[i]; d < -5*time.Microsecond || d > 5*time.Microsecond {
					t.Fatalf("sleeps %v, want %v", c.sleeps, tt.wantSleeps)
				}
			}
		})
	}
}

func TestSleepUntilCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &fakeClock{tick: time.Microsecond}
	for _, spin := range []time.Duration{0, 2 * time.Second} {
		if err := sleepUntil(ctx, c, c.peek()+time.Second, spin); !errors.Is(err, context.Canceled) {
			t.Fatalf("spin %v: sleepUntil = %v, want context.Canceled", spin, err)
		}
	}
}
