package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/aunsorm/timenode/netsvc/roughtime"
)

// maxSimWitnesses is the most --sim-witnesses: enough for any quorum a
// demo wants, few enough that a typo does not open hundreds of sockets.
const maxSimWitnesses = 5

// simWitnessRadius is the radius the simulated witnesses claim: a
// stratum-1 Roughtime server's, so that with a loopback round trip the
// witness check resolves tens of µs.
const simWitnessRadius = 10 * time.Microsecond

// truthSource serves the simulation's true time, which no /sim/* attack
// moves: the time a witness outside the GNSS path keeps.
type truthSource struct{}

func (truthSource) Now() (time.Time, time.Duration, bool) {
	return simTruth.Now(), simWitnessRadius, true
}

// memKey is a simulated witness's long-term key, made at start and kept in
// ordinary memory: it signs the true time of a simulation, nothing else.
type memKey struct{ priv ed25519.PrivateKey }

func (k memKey) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }
func (k memKey) Public() ed25519.PublicKey       { return k.priv.Public().(ed25519.PublicKey) }

// startSimWitnesses runs n Google-Roughtime servers of the simulation's
// true time on 127.0.0.1 until ctx is done and returns them as witnesses.
func startSimWitnesses(ctx context.Context, n int, log *slog.Logger) ([]roughtimeWitness, error) {
	ws := make([]roughtimeWitness, 0, n)
	for i := range n {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		key := memKey{priv}
		srv, err := roughtime.NewServer(roughtime.Config{Addr: "127.0.0.1:0", TimeSource: truthSource{},
			LongTermKey: key, Logger: log.With("component", "sim_witness", "witness", i)})
		if err != nil {
			return nil, fmt.Errorf("simulated witness %d: %w", i, err)
		}
		if err := srv.Listen(); err != nil {
			return nil, fmt.Errorf("simulated witness %d: %w", i, err)
		}
		go func() {
			if err := srv.Serve(ctx); err != nil && ctx.Err() == nil {
				log.Error("simulated witness stopped", "witness", i, "err", err)
			}
		}()
		w := roughtimeWitness{Addr: srv.Addr().String(), PublicKey: key.Public(), Version: roughtime.VersionGoogle}
		log.Info("simulated witness", "addr", w.Addr, "serves", "the simulation's true time")
		ws = append(ws, w)
	}
	return ws, nil
}
