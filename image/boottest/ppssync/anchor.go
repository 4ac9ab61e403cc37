package ppssync

import (
	"fmt"
	"math"
	"time"
)

// Anchor ties the guest's raw clock to host UTC: at raw-clock reading Raw
// the host's clock read Host, give or take Uncertainty. Between anchors
// the raw clock is extrapolated at 1+Rate host seconds per raw second.
type Anchor struct {
	// Raw is the raw-clock reading at the anchor point (the midpoint of
	// the exchange used).
	Raw time.Duration
	// Host is host UTC at the same instant.
	Host time.Time
	// Uncertainty bounds the error of Host at Raw: half the round trip of
	// the exchange used, whatever the asymmetry of the path.
	Uncertainty time.Duration
	// RTT is that exchange's round trip, less the host's turnaround.
	RTT time.Duration
	// Exchanges is the number of exchanges that completed.
	Exchanges int
	// Rate is the fractional frequency offset of host time against the
	// raw clock: raw elapsed d maps to host elapsed d×(1+Rate). Estimate
	// leaves it 0; see [DriftRate] and [Anchor.WithRate].
	Rate float64
}

// HostTime returns the host UTC at raw-clock reading raw.
func (a Anchor) HostTime(raw time.Duration) time.Time {
	d := raw - a.Raw
	if a.Rate != 0 {
		d += time.Duration(math.Round(float64(d) * a.Rate))
	}
	return a.Host.Add(d)
}

// RawTime returns the raw-clock reading at host UTC t; it inverts
// HostTime to within a nanosecond.
func (a Anchor) RawTime(t time.Time) time.Duration {
	d := t.Sub(a.Host)
	if a.Rate != 0 {
		d = time.Duration(math.Round(float64(d) / (1 + a.Rate)))
	}
	return a.Raw + d
}

// Offset returns host UTC minus the raw clock at the anchor point, in
// nanoseconds since the Unix epoch minus raw nanoseconds.
func (a Anchor) Offset() time.Duration {
	return time.Duration(a.Host.UnixNano()) - a.Raw
}

// WithRate returns a copy of a that extrapolates at rate (see Rate).
func (a Anchor) WithRate(rate float64) Anchor {
	a.Rate = rate
	return a
}

// String summarises the anchor for a log line.
func (a Anchor) String() string {
	return fmt.Sprintf("raw %v = %s ±%v (rtt %v, %d exchanges, rate %+.3fppm)",
		a.Raw, a.Host.UTC().Format("2006-01-02T15:04:05.000000000Z"), a.Uncertainty, a.RTT, a.Exchanges, a.Rate*1e6)
}

// DriftRate estimates the fractional frequency offset of host time against
// the raw clock from two anchors taken at different times, and bounds its
// error by the anchors' uncertainties over the span between them. ok is
// false when latest is not after base. The longer the span, the better
// the estimate: pass the first anchor of a run as base.
func DriftRate(base, latest Anchor) (rate, uncertainty float64, ok bool) {
	span := latest.Raw - base.Raw
	if span <= 0 {
		return 0, 0, false
	}
	hostSpan := latest.Host.Sub(base.Host)
	rate = float64(hostSpan-span) / float64(span)
	uncertainty = float64(base.Uncertainty+latest.Uncertainty) / float64(span)
	return rate, uncertainty, true
}
