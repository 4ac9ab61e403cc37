package pps

import (
	"context"
	"errors"
	"time"
)

// Quality says how a pulse was timestamped, which bounds its error.
type Quality int

// Pulse timestamp qualities, best first.
const (
	QualityKernel    Quality = iota // kernel PPS driver (interrupt timestamp)
	QualitySimulated                // simulated pulse (error from the noise model)
	QualityGPIO                     // user-space timestamp after a GPIO edge
)

// String is the value of the quality label in metrics.
func (q Quality) String() string {
	switch q {
	case QualityKernel:
		return "kernel"
	case QualitySimulated:
		return "simulated"
	case QualityGPIO:
		return "gpio"
	default:
		return "unknown"
	}
}

// TimestampError is the typical one-sigma error of a timestamp of this
// quality, used to seed the error bound before jitter has been measured.
func (q Quality) TimestampError() time.Duration {
	switch q {
	case QualityKernel:
		return time.Microsecond
	case QualitySimulated:
		return time.Microsecond
	case QualityGPIO:
		return 50 * time.Microsecond
	default:
		return time.Millisecond
	}
}

// Pulse is one assert edge of the 1PPS signal.
type Pulse struct {
	// Local is the edge as read on the disciplined local clock.
	Local time.Time
	// Seq is the source's sequence number for the edge; a gap means missed
	// pulses.
	Seq uint64
	// Quality says how Local was obtained.
	Quality Quality
}

// Source yields PPS edges in order.
type Source interface {
	// Fetch blocks until the next edge, ctx is done, or the source fails.
	// A source that sees no edge within its own timeout returns ErrTimeout
	// and may be called again.
	Fetch(ctx context.Context) (Pulse, error)
	// Close releases the device.
	Close() error
}

// ErrTimeout is returned by Fetch when no edge arrived within the source's
// timeout; the caller may retry.
var ErrTimeout = errors.New("pps: no edge within timeout")
