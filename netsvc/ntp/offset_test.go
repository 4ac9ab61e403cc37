package ntp

import (
	"testing"
	"time"
)

// TestClockOffsetKeepsTheTightestTriple: a read triple interrupted by the
// scheduler gives an offset wrong by up to half the gap; clockOffset reads
// again and keeps the tightest triple.
func TestClockOffsetKeepsTheTightestTriple(t *testing.T) {
	const served = 2500 * time.Microsecond
	t0 := time.Date(2036, 2, 8, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		host []time.Duration // successive host readings
		disc []time.Duration // host instant of each disciplined reading
	}{
		{"first triple tight", []time.Duration{0, 2 * time.Microsecond}, []time.Duration{time.Microsecond}},
		{"preempted after the disciplined read, then tight",
			[]time.Duration{0, 2 * time.Millisecond, 3 * time.Millisecond, 3*time.Millisecond + 2*time.Microsecond},
			[]time.Duration{time.Microsecond, 3*time.Millisecond + time.Microsecond}},
		{"always preempted: the smallest gap wins",
			[]time.Duration{0, 4 * time.Millisecond, 5 * time.Millisecond, 6 * time.Millisecond, 7 * time.Millisecond, 10 * time.Millisecond},
			[]time.Duration{time.Microsecond, 5*time.Millisecond + 500*time.Microsecond, 7*time.Millisecond + time.Microsecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hi, di := 0, 0
			host := func() time.Time { h := t0.Add(tc.host[hi]); hi++; return h }
			disc := func() time.Time { d := t0.Add(tc.disc[di] + served); di++; return d }
			off, _, _ := clockOffset(host, disc)
			if err := time.Duration(off) - served; err < -time.Microsecond || err > time.Microsecond {
				t.Errorf("offset %v, want %v ± 1µs (error %v)", time.Duration(off), served, err)
			}
		})
	}
}
