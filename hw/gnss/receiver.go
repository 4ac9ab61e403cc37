package gnss

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

// Receiver states reported in Stats.State.
const (
	StateOK           = "ok"           // valid sentences are arriving
	StateNoData       = "no_data"      // port open, nothing for SilenceTimeout
	StateNotNMEA      = "not_nmea"     // bytes arrive but no valid sentence
	StateDisconnected = "disconnected" // port not open
)

// Stats is a snapshot of a Receiver's counters and state.
type Stats struct {
	SentencesOK     uint64 // checksum valid (or missing and allowed) and parsed
	ChecksumBad     uint64 // "*HH" present but wrong or malformed
	ChecksumMissing uint64 // no "*HH" (accepted only if configured)
	Unparsable      uint64 // known type whose fields do not decode
	UnknownType     uint64 // well-formed sentence of a type not decoded
	BytesDropped    uint64 // garbage, lone delimiters, overlong lines
	Reconnects      uint64 // reopens after the device failed
	Epochs          uint64 // Fixes sent
	BytesRead       uint64 // bytes read from the device
	// State is StateOK, StateNoData, StateNotNMEA or StateDisconnected.
	State string
	// LastError describes the last failure (open, read, not NMEA), if any.
	LastError string
}

// Receiver reads NMEA from a serial device and sends one Fix per epoch.
type Receiver struct {
	cfg    Config
	cfgErr error
	clk    clock.Clock
	log    *slog.Logger

	mu    sync.Mutex
	stats Stats

	skyMu sync.Mutex
	sky   Sky

	// Owned by Run's goroutine.
	framer        Framer
	parser        *Parser
	asm           Assembler
	sinceValid    int
	pending       []Fix
	framerDropped uint64
}

// NewReceiver returns a Receiver for cfg (zero fields get the defaults).
// Fix.Received is read from clk when a read returns the first byte of an
// epoch; log may be nil.
func NewReceiver(cfg Config, clk clock.Clock, log *slog.Logger) *Receiver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := cfg.withDefaults()
	r := &Receiver{
		cfg:    c,
		cfgErr: err,
		clk:    clk,
		log:    log.With("component", "gnss", "device", cfg.Device),
		parser: NewParser(),
	}
	r.asm.MinDate = c.MinDate
	r.sky.StaleAfter = c.SkyStaleAfter
	r.stats.State = StateDisconnected
	return r
}

// Stats returns a snapshot of the counters; safe for concurrent use.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Sky returns what the receiver said recently about its satellites, fix
// and antenna, as of the clock's now; safe for concurrent use.
func (r *Receiver) Sky() SkyView {
	now := r.clk.Now()
	r.skyMu.Lock()
	defer r.skyMu.Unlock()
	return r.sky.View(now)
}

// Run opens the device, reads and parses until ctx is done, sending a Fix
// on fixes for every epoch. When the device fails (EOF, EIO, unplug) it is
// reopened after a capped, jittered exponential backoff. Run returns nil
// when ctx is done. The one exception is a configuration that can never
// work (Config.Validate fails): Run returns that error at once rather than
// retrying forever.
func (r *Receiver) Run(ctx context.Context, fixes chan<- Fix) error {
	if r.cfgErr != nil {
		return r.cfgErr
	}
	attempt := 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		port, err := openPort(r.cfg)
		if err == nil {
			r.setState(StateNoData, "")
			r.log.Info("device opened", "baud", r.cfg.Baud, "parity", string(r.cfg.Parity))
			var gotData bool
			gotData, err = r.serve(ctx, port, fixes)
			port.Close()
			if ctx.Err() != nil {
				r.setState(StateDisconnected, "")
				return nil
			}
			if gotData {
				attempt = 0
			}
			r.mu.Lock()
			r.stats.Reconnects++
			r.mu.Unlock()
		}
		r.setState(StateDisconnected, err.Error())
		delay := r.backoff(attempt)
		// Log the transition loudly, the retries that follow quietly.
		level := slog.LevelWarn
		if attempt > 0 {
			level = slog.LevelDebug
		}
		attempt++
		r.log.Log(ctx, level, "device failed, reopening", "err", err, "attempt", attempt, "retry_in_ms", delay.Milliseconds())
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is MinBackoff doubled per failed attempt, capped at MaxBackoff,
// then jittered uniformly into [d/2, d].
func (r *Receiver) backoff(attempt int) time.Duration {
	d := r.cfg.MinBackoff
	for i := 0; i < attempt && d < r.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// serve reads one open port until it fails or ctx is done. gotData reports
// whether a valid sentence arrived, which resets the backoff.
func (r *Receiver) serve(ctx context.Context, port io.Reader, fixes chan<- Fix) (gotData bool, err error) {
	chunks := make(chan chunk, 4)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.readLoop(port, chunks, quit)
	}()
	defer func() {
		close(quit)
		<-done
	}()
	r.framer.Reset()
	r.sinceValid = 0
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	silence := time.NewTimer(r.cfg.SilenceTimeout)
	defer gap.Stop()
	defer silence.Stop()
	for {
		select {
		case <-ctx.Done():
			return gotData, ctx.Err()
		case c := <-chunks:
			if c.err != nil {
				r.flushEpoch()
				r.send(ctx, fixes)
				return gotData, c.err
			}
			if r.ingest(c.data, c.at) {
				gotData = true
			}
			silence.Reset(r.cfg.SilenceTimeout)
			gap.Reset(r.cfg.EpochGap)
		case <-gap.C:
			r.flushEpoch()
		case <-silence.C:
			r.flushEpoch()
			if r.Stats().State != StateNoData {
				r.setState(StateNoData, "")
				r.log.Warn("no data from receiver", "silence_ms", r.cfg.SilenceTimeout.Milliseconds())
			}
		}
		r.send(ctx, fixes)
	}
}

// send delivers the Fixes completed so far.
func (r *Receiver) send(ctx context.Context, fixes chan<- Fix) {
	for _, f := range r.pending {
		select {
		case fixes <- f:
		case <-ctx.Done():
			r.pending = r.pending[:0]
			return
		}
	}
	r.pending = r.pending[:0]
}

// flushEpoch completes the epoch being assembled after a quiet gap.
func (r *Receiver) flushEpoch() {
	if f, ok := r.asm.Flush(); ok {
		r.pending = append(r.pending, f)
		r.mu.Lock()
		r.stats.Epochs++
		r.mu.Unlock()
	}
}

func (r *Receiver) setState(state, lastErr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.State = state
	if lastErr != "" {
		r.stats.LastError = lastErr
	}
}

// errNotNMEA is the message logged and kept in Stats.LastError when a
// stream carries bytes but no sentences.
func errNotNMEA(n int) error {
	return fmt.Errorf("no valid sentence in %d bytes — check baud rate", n)
}
