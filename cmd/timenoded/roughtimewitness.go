package main

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/aunsorm/timenode/netsvc/roughtime"
	"github.com/aunsorm/timenode/timing/integrity"
)

// roughtimeWitness is one --witness-roughtime as configured: the server,
// its long-term key and the protocol version.
type roughtimeWitness struct {
	Addr      string
	PublicKey ed25519.PublicKey
	Version   roughtime.Version
}

// roughtimeQuerier adapts netsvc/roughtime's client to
// integrity.RoughtimeQuerier, which keeps package integrity free of
// netsvc: every reply is verified against the long-term key, and the
// exchange is timed on now, the node's clock being checked.
type roughtimeQuerier struct {
	w   roughtimeWitness
	now func() time.Time
	// attempts and wait tune retries (roughtime.QueryOptions; zero: its
	// defaults).
	attempts int
	wait     time.Duration
}

// QueryRoughtime implements integrity.RoughtimeQuerier.
func (q roughtimeQuerier) QueryRoughtime(ctx context.Context) (integrity.RoughtimeSample, error) {
	res, err := roughtime.Query(ctx, q.w.Addr, q.w.PublicKey, q.w.Version, roughtime.QueryOptions{
		Now: q.now, Attempts: q.attempts, Wait: q.wait})
	if err != nil {
		return integrity.RoughtimeSample{}, err
	}
	return integrity.RoughtimeSample{Received: res.Received, Offset: res.Offset(), Radius: res.Radius, RTT: res.RTT}, nil
}

// newRoughtimeWitness is the integrity witness of w, timing its exchanges
// with now.
func newRoughtimeWitness(w roughtimeWitness, now func() time.Time) *integrity.RoughtimeWitness {
	return &integrity.RoughtimeWitness{Addr: w.Addr, Querier: roughtimeQuerier{w: w, now: now}}
}
