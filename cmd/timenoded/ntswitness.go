package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aunsorm/timenode/netsvc/nts/ntsclient"
	"github.com/aunsorm/timenode/netsvc/site"
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
// exchanges with now, the node's clock being checked. The client is
// returned too, for a reload to hand it new roots.
func newNTSWitness(addr string, roots *x509.CertPool, now func() time.Time) (*integrity.NTSWitness, *ntsclient.Client, error) {
	c, err := ntsclient.New(ntsclient.Config{Addr: addr, RootCAs: roots, Now: now})
	if err != nil {
		return nil, nil, err
	}
	return &integrity.NTSWitness{Addr: addr, Querier: ntsQuerier{c}}, c, nil
}

// witnessCA reads the trust anchors of the NTS witnesses for one
// material set: --witness-nts-ca when given, else the site generation's
// witness-ca.pem when the bundle carried one; path "" and nil roots mean
// the system roots. Nothing is read without an NTS witness to use it,
// and a file that no longer reads refuses the set, as any other does.
func witnessCA(cfg *config, gen string) (path string, roots *x509.CertPool, err error) {
	if len(cfg.ntsWitnesses) == 0 {
		return "", nil, nil
	}
	path = cfg.ntsWitnessCA
	if path == "" && gen != "" {
		p := filepath.Join(gen, site.WitnessCA)
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			path = p
		}
	}
	if path == "" {
		return "", nil, nil
	}
	if roots, err = loadCAPool(path); err != nil {
		return "", nil, fmt.Errorf("NTS witness CA: %w", err)
	}
	return path, roots, nil
}

// witnessTrust hands the NTS witnesses the trust anchors of each
// material set, so that a reload bringing a new witness-ca.pem has their
// next NTS-KE check the servers against it.
type witnessTrust struct {
	clients []*ntsclient.Client
	path    string         // the CA file in use; "": the system roots
	roots   *x509.CertPool // nil: the system roots
	told    bool           // the anchors in use have been logged once
}

// use installs the anchors of a material set, logging them at start and
// on a change: the clients of the old anchors drop their sessions
// (SetRootCAs). Without NTS witnesses it does nothing.
func (w *witnessTrust) use(path string, roots *x509.CertPool, log *slog.Logger) {
	if w == nil || len(w.clients) == 0 {
		return
	}
	changed := !w.told || w.path != path || !ntsclient.SameRoots(w.roots, roots)
	w.path, w.roots, w.told = path, roots, true
	for _, c := range w.clients {
		c.SetRootCAs(roots)
	}
	if changed {
		log.Info("NTS witnesses trust", "ca", trustName(path), "witnesses", len(w.clients))
	}
}

// trustName names a CA file for logs.
func trustName(path string) string {
	if path == "" {
		return "the system roots"
	}
	return path
}
