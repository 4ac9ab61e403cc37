package main

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/aunsorm/timenode/netsvc/nts/ntsclient"
	"github.com/aunsorm/timenode/timing/integrity"
)

// ntsQuerier adapts an NTS client to integrity.NTPQuerier, which keeps
// package integrity free of netsvc.
type ntsQuerier struct{ c *ntsclient.Client }

// QueryNTP implements integrity.NTPQuerier.
func (q ntsQuerier) QueryNTP(ctx context.Context) (integrity.NTPSample, error) {
	r, err := q.c.Query(ctx)
	if err != nil {
		return integrity.NTPSample{}, err
	}
	return integrity.NTPSample{Received: r.T4, Offset: r.Offset, Delay: r.Delay,
		RootDelay: r.RootDelay, RootDispersion: r.RootDispersion}, nil
}

// newNTSWitness is the witness of the NTS server whose NTS-KE address is
// addr, trusted through roots (nil: the system roots), timing its
// exchanges with now, the node's clock being checked.
func newNTSWitness(addr string, roots *x509.CertPool, now func() time.Time) (*integrity.NTSWitness, error) {
	c, err := ntsclient.New(ntsclient.Config{Addr: addr, RootCAs: roots, Now: now})
	if err != nil {
		return nil, err
	}
	return &integrity.NTSWitness{Addr: addr, Querier: ntsQuerier{c}}, nil
}
