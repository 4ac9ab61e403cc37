package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/hw/pty"
	"github.com/aunsorm/timenode/hw/sim"
)

// simTruth is true time in simulation: the host clock, only ever read,
// and advanced by the monotonic clock so that a step of the host's clock
// under a running simulation is not a step of its GNSS reference.
var simTruth = clocktest.NewSteady()

// simWander is the simulated oscillator's random-walk frequency noise,
// ppb/√s; the integrity check's model of it (simModel) follows.
const simWander = 0.5

// simAntenna is where the simulated antenna is.
var simAntenna = sim.Position{Lat: 41.0151, Lon: 28.9795, Alt: 40}

// simWorld is the simulated hardware: an oscillator, a receiver writing
// NMEA into a pty and a PPS timestamped by the oscillator.
type simWorld struct {
	osc *clocktest.Oscillator
	rx  *sim.Receiver
	pps *sim.PPS
}

func openHardware(ctx context.Context, cfg *config, log *slog.Logger) (*hardware, error) {
	if !cfg.sim {
		k := clock.NewKernel()
		if err := k.TakeOver(); err != nil {
			return nil, fmt.Errorf("kernel clock: %w", err)
		}
		src, err := openPPS(cfg, k)
		if err != nil {
			return nil, err
		}
		return &hardware{clk: k, serial: cfg.serial, pps: src}, nil
	}
	// A local clock that starts a random 150-400 ms off true time (so the
	// first lock steps it) and runs 5-25 ppm fast or slow, with wander.
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	off := time.Duration(150+r.IntN(250)) * time.Millisecond
	if r.IntN(2) == 0 {
		off = -off
	}
	ppb := float64(5000 + r.IntN(20000))
	if r.IntN(2) == 0 {
		ppb = -ppb
	}
	osc := clocktest.NewOscillator(simTruth, clocktest.OscillatorConfig{
		InitialOffset: off, FrequencyErrorPPB: ppb, WanderPPB: simWander, Seed: r.Uint64()})
	master, slave, err := pty.Open()
	if err != nil {
		return nil, err
	}
	w := &simWorld{
		osc: osc,
		rx: sim.NewReceiver(master, simTruth, sim.ReceiverConfig{
			Delay: 250 * time.Millisecond, Jitter: 100 * time.Millisecond,
			Position: simAntenna, Seed: r.Uint64()}),
		pps: sim.NewPPS(simTruth, osc, sim.PPSConfig{Noise: time.Microsecond, Seed: r.Uint64()}),
	}
	go func() {
		defer master.Close()
		if err := w.rx.Run(ctx); err != nil {
			log.Error("simulated receiver stopped", "err", err)
		}
	}()
	log.Info("simulation", "serial", slave, "initial_offset_ns", int64(off), "freq_error_ppb", ppb)
	return &hardware{clk: osc, serial: slave, pps: w.pps, sim: w}, nil
}

// controlHandler lets tests and demos break the simulated hardware:
// POST /sim/pps?on=false cuts the pulse, /sim/fix?valid=false loses the
// fix, /sim/nmea?on=false silences the receiver; the attacks on GNSS are
// in attackRoutes. GET /sim/truth reports the oscillator's true error.
// Only served on the plain listener in --sim.
func (w *simWorld) controlHandler() http.Handler {
	mux := http.NewServeMux()
	toggle := func(param string, set func(bool)) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			v, err := strconv.ParseBool(r.URL.Query().Get(param))
			if err != nil {
				http.Error(rw, fmt.Sprintf("want ?%s=true|false", param), http.StatusBadRequest)
				return
			}
			set(v)
			fmt.Fprintf(rw, "ok %s=%t\n", param, v)
		}
	}
	mux.HandleFunc("POST /sim/pps", toggle("on", w.pps.SetEnabled))
	mux.HandleFunc("POST /sim/fix", toggle("valid", w.rx.SetFix))
	mux.HandleFunc("POST /sim/nmea", toggle("on", func(on bool) { w.rx.SetSilent(!on) }))
	w.attackRoutes(mux)
	mux.HandleFunc("GET /sim/truth", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, "{\"true_offset_ns\": %d, \"natural_frequency_ppb\": %.3f}\n",
			int64(w.osc.TrueOffset()), w.osc.NaturalFrequencyPPB())
	})
	return mux
}
