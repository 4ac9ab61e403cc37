package integrity

import (
	"context"
	"crypto/ed25519"
	"errors"
	"time"

	"github.com/aunsorm/timenode/netsvc/roughtime"
)

// RoughtimeWitness asks a Roughtime server (netsvc/roughtime's client,
// verified against the server's long-term key). Draft 11 carries time in
// whole seconds, so such a witness catches gross errors (a week rollover,
// a wrong leap second, a push of seconds); the Google version's
// microseconds and a short round trip are what bound a drag.
type RoughtimeWitness struct {
	// Label names the witness (default Addr).
	Label string
	// Addr is host:port (UDP).
	Addr string
	// PublicKey is the server's long-term key.
	PublicKey ed25519.PublicKey
	// Version is the protocol version to speak.
	Version roughtime.Version
	// Now reads the node's disciplined clock, the clock being checked
	// (required; it is never the host's wall clock in tests).
	Now func() time.Time
	// Attempts and Wait tune retries (roughtime.QueryOptions).
	Attempts int
	Wait     time.Duration
}

var _ Witness = (*RoughtimeWitness)(nil)

// Name returns Label, or Addr without one.
func (w *RoughtimeWitness) Name() string {
	if w.Label != "" {
		return w.Label
	}
	return w.Addr
}

// Measure queries the server once. The offset is MIDP minus the node's
// midpoint of the exchange; the uncertainty RADI plus half the round trip.
func (w *RoughtimeWitness) Measure(ctx context.Context) (Measurement, error) {
	if w.Now == nil {
		return Measurement{}, errors.New("integrity: roughtime witness without a node clock")
	}
	res, err := roughtime.Query(ctx, w.Addr, w.PublicKey, w.Version, roughtime.QueryOptions{
		Now: w.Now, Attempts: w.Attempts, Wait: w.Wait})
	if err != nil {
		return Measurement{}, err
	}
	return Measurement{
		Witness:     w.Name(),
		At:          res.Received,
		Offset:      res.Offset(),
		Uncertainty: res.Radius + (res.RTT+1)/2, // rounded up
	}, nil
}
