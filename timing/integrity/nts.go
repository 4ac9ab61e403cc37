package integrity

import (
	"context"
	"errors"
	"time"
)

// NTPSample is one authenticated NTP client/server exchange as the client
// measured it against the node's clock (RFC 5905 section 8).
type NTPSample struct {
	// Received is the node's clock when the reply arrived (T4).
	Received time.Time
	// Offset is server time minus node time; Delay the round trip less
	// the server's processing.
	Offset, Delay time.Duration
	// RootDelay and RootDispersion are the server's, as it sent them.
	RootDelay, RootDispersion time.Duration
}

// NTPQuerier makes one authenticated NTP exchange, reading the node's
// clock for its own timestamps. The daemon adapts netsvc/nts/ntsclient to
// it, so this package does no network I/O of its own for NTS and imports
// nothing above it.
type NTPQuerier interface {
	QueryNTP(ctx context.Context) (NTPSample, error)
}

// NTSWitness asks an NTS-secured NTP server (RFC 8915): the reply is
// authenticated with keys from a TLS 1.3 key exchange whose certificate
// the querier verified. NTP carries time to 2^-32 s, so unlike a draft-11
// Roughtime witness this one bounds a drag to about its round trip.
type NTSWitness struct {
	// Label names the witness (default Addr).
	Label string
	// Addr is the server's NTS-KE address, host:port, for the name.
	Addr string
	// Querier makes the exchanges (required).
	Querier NTPQuerier
}

var _ Witness = (*NTSWitness)(nil)

// Name returns Label, or Addr without one.
func (w *NTSWitness) Name() string {
	if w.Label != "" {
		return w.Label
	}
	return w.Addr
}

// Measure makes one exchange. The offset is the NTP offset; the
// uncertainty the server's root distance (root delay/2 + root dispersion,
// the bound on its own error it vouches for) plus half the round trip,
// rounded up (the path's asymmetry is unknown).
func (w *NTSWitness) Measure(ctx context.Context) (Measurement, error) {
	if w.Querier == nil {
		return Measurement{}, errors.New("integrity: NTS witness without a querier")
	}
	s, err := w.Querier.QueryNTP(ctx)
	if err != nil {
		return Measurement{}, err
	}
	if s.Delay < 0 || s.RootDelay < 0 || s.RootDispersion < 0 {
		return Measurement{}, errors.New("integrity: NTS witness sample with a negative delay or dispersion")
	}
	return Measurement{
		Witness:     w.Name(),
		At:          s.Received,
		Offset:      s.Offset,
		Uncertainty: (s.RootDelay+1)/2 + s.RootDispersion + (s.Delay+1)/2,
	}, nil
}
