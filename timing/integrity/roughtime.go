package integrity

import (
	"context"
	"errors"
	"time"
)

// RoughtimeSample is one verified Roughtime exchange as the client
// measured it against the node's clock.
type RoughtimeSample struct {
	// Received is the node's clock when the reply arrived.
	Received time.Time
	// Offset is the server's midpoint (MIDP) minus the node's midpoint of
	// the exchange.
	Offset time.Duration
	// Radius is the server's RADI; RTT the exchange's round trip.
	Radius, RTT time.Duration
}

// RoughtimeQuerier makes one Roughtime exchange whose reply it verified
// against the server's long-term key, reading the node's clock for its
// own timestamps. The daemon adapts netsvc/roughtime's client to it, so
// this package does no network I/O and imports nothing above it.
type RoughtimeQuerier interface {
	QueryRoughtime(ctx context.Context) (RoughtimeSample, error)
}

// RoughtimeWitness asks a Roughtime server. Draft 11 carries time in whole
// seconds, so such a witness catches gross errors (a week rollover, a
// wrong leap second, a push of seconds); the Google version's
// microseconds and a short round trip are what bound a drag.
type RoughtimeWitness struct {
	// Label names the witness (default Addr).
	Label string
	// Addr is the server's host:port (UDP), for the name.
	Addr string
	// Querier makes the exchanges (required).
	Querier RoughtimeQuerier
}

var _ Witness = (*RoughtimeWitness)(nil)

// Name returns Label, or Addr without one.
func (w *RoughtimeWitness) Name() string {
	if w.Label != "" {
		return w.Label
	}
	return w.Addr
}

// Measure makes one exchange. The offset is the sample's; the
// uncertainty RADI plus half the round trip, rounded up (the path's
// asymmetry is unknown).
func (w *RoughtimeWitness) Measure(ctx context.Context) (Measurement, error) {
	if w.Querier == nil {
		return Measurement{}, errors.New("integrity: roughtime witness without a querier")
	}
	s, err := w.Querier.QueryRoughtime(ctx)
	if err != nil {
		return Measurement{}, err
	}
	if s.Radius < 0 || s.RTT < 0 {
		return Measurement{}, errors.New("integrity: roughtime witness sample with a negative radius or round trip")
	}
	return Measurement{
		Witness:     w.Name(),
		At:          s.Received,
		Offset:      s.Offset,
		Uncertainty: s.Radius + (s.RTT+1)/2,
	}, nil
}
