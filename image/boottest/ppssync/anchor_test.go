package ppssync

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestAnchorMapping(t *testing.T) {
	host := time.Date(2031, 6, 1, 0, 0, 7, 250_000_000, time.UTC)
	tests := []struct {
		name string
		a    Anchor
		raw  time.Duration
		want time.Time
	}{
		{"at the anchor", Anchor{Raw: 10 * time.Second, Host: host}, 10 * time.Second, host},
		{"later", Anchor{Raw: 10 * time.Second, Host: host}, 12*time.Second + 750*time.Millisecond, host.Add(2750 * time.Millisecond)},
		{"earlier", Anchor{Raw: 10 * time.Second, Host: host}, 9 * time.Second, host.Add(-time.Second)},
		{"host runs 50 ppm fast", Anchor{Raw: 10 * time.Second, Host: host, Rate: 50e-6}, 70 * time.Second, host.Add(time.Minute + 3*time.Millisecond)},
		{"host runs 20 ppm slow", Anchor{Raw: 10 * time.Second, Host: host, Rate: -20e-6}, 110 * time.Second, host.Add(100*time.Second - 2*time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.a.HostTime(tt.raw)
			if !got.Equal(tt.want) {
				t.Errorf("HostTime(%v) = %v, want %v", tt.raw, got, tt.want)
			}
			if back := tt.a.RawTime(tt.want); (back - tt.raw).Abs() > 1 {
				t.Errorf("RawTime(%v) = %v, want %v", tt.want, back, tt.raw)
			}
		})
	}
	a := Anchor{Raw: 10 * time.Second, Host: host, Uncertainty: 150 * time.Microsecond, RTT: 300 * time.Microsecond, Exchanges: 8}
	if got, want := a.Offset(), time.Duration(host.UnixNano())-10*time.Second; got != want {
		t.Errorf("Offset() = %v, want %v", got, want)
	}
	if s := a.String(); !strings.Contains(s, "2031-06-01T00:00:07.250000000Z ±150µs") || !strings.Contains(s, "8 exchanges") {
		t.Errorf("String() = %q", s)
	}
	if got := a.WithRate(1e-6).Rate; got != 1e-6 {
		t.Errorf("WithRate: Rate = %g", got)
	}
}

func TestDriftRate(t *testing.T) {
	host := time.Date(2036, 2, 8, 0, 0, 0, 0, time.UTC)
	base := Anchor{Raw: time.Minute, Host: host, Uncertainty: time.Millisecond}
	tests := []struct {
		name     string
		latest   Anchor
		rate     float64
		unc      float64
		ok       bool
		rateTolr float64
	}{
		{"same rate", Anchor{Raw: 11 * time.Minute, Host: host.Add(10 * time.Minute), Uncertainty: time.Millisecond}, 0, 2e-3 / 600, true, 1e-12},
		{"host 10 ppm fast", Anchor{Raw: 11 * time.Minute, Host: host.Add(10*time.Minute + 6*time.Millisecond), Uncertainty: 0}, 10e-6, 1e-3 / 600, true, 1e-12},
		{"host 5 ppm slow", Anchor{Raw: 2 * time.Minute, Host: host.Add(time.Minute - 300*time.Microsecond), Uncertainty: 0}, -5e-6, 1e-3 / 60, true, 1e-12},
		{"same instant", Anchor{Raw: time.Minute, Host: host}, 0, 0, false, 0},
		{"earlier", Anchor{Raw: time.Second, Host: host}, 0, 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rate, unc, ok := DriftRate(base, tt.latest)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if math.Abs(rate-tt.rate) > tt.rateTolr || math.Abs(unc-tt.unc) > 1e-12 {
				t.Fatalf("DriftRate = %g ±%g, want %g ±%g", rate, unc, tt.rate, tt.unc)
			}
		})
	}
}
