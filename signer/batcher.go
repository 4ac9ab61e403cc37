package signer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ClaimsFunc returns the claims of the batch about to be signed (time,
// error bound, state, ...). The batcher calls it once per batch, just
// before signing, so that the signed time is as late as possible.
type ClaimsFunc func() (Claims, error)

// BatchOptions tune a Batcher.
type BatchOptions struct {
	// Window, if set, is how long the first request of a batch waits for
	// others. Zero (the default) is group commit: a request is signed at
	// once when no signature is in progress, and requests that arrive
	// during one are signed together right after it, so batches grow with
	// load and an idle node answers without waiting.
	Window time.Duration
	// MaxBatch signs at once when this many requests wait (64 if zero).
	MaxBatch int
	// Refresh is the longest a no-nonce snapshot is served before it is
	// re-signed (REFRESH_INTERVAL_SECS; 15 s if zero).
	Refresh time.Duration
	// Now is the clock that ages the snapshot (time.Now if nil).
	Now func() time.Time
}

// Batcher collects concurrent nonce-bound requests and answers them all
// with one hybrid signature over the Merkle root of their nonces.
// Requests without a nonce get a cached snapshot.
type Batcher struct {
	sig    *Signer
	claims ClaimsFunc
	opts   BatchOptions

	mu       sync.Mutex
	pending  []*request
	timer    *time.Timer
	signing  bool          // a group-commit loop is running
	lastN    int           // target batch: the largest recent batch, decaying
	lastSign time.Duration // how long the last signature took
	want     int           // gather: wake the commit loop at this many pending
	wake     chan struct{} // gather: closed when want is reached; nil if none waits

	signatures, batched atomic.Uint64

	snapMu   sync.Mutex
	snap     *Attestation
	snapTime time.Time
}

type request struct {
	nonce []byte
	done  chan result
}

type result struct {
	att *Attestation
	err error
}

// NewBatcher returns a batcher signing with sig and claims.
func NewBatcher(sig *Signer, claims ClaimsFunc, opts BatchOptions) *Batcher {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 64
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 15 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Batcher{sig: sig, claims: claims, opts: opts}
}

// Attest returns an attestation bound to nonce, signed in a batch with
// the other requests of the same window. An empty nonce returns the
// snapshot (see Snapshot).
func (b *Batcher) Attest(ctx context.Context, nonce []byte) (*Attestation, error) {
	if len(nonce) == 0 {
		return b.Snapshot()
	}
	r := &request{nonce: append([]byte(nil), nonce...), done: make(chan result, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	switch {
	case b.opts.Window <= 0:
		if !b.signing {
			b.signing = true
			go b.commitLoop()
		} else if b.wake != nil && len(b.pending) >= b.want {
			close(b.wake)
			b.wake = nil
		}
		b.mu.Unlock()
	case len(b.pending) >= b.opts.MaxBatch:
		batch := b.take()
		b.mu.Unlock()
		go b.sign(batch)
	case len(b.pending) == 1:
		b.timer = time.AfterFunc(b.opts.Window, b.flush)
		b.mu.Unlock()
	default:
		b.mu.Unlock()
	}
	select {
	case res := <-r.done:
		return res.att, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("signer: batch attest: %w", ctx.Err())
	}
}

// take removes the pending batch; b.mu is held.
func (b *Batcher) take() []*request {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	batch := b.pending
	b.pending = nil
	return batch
}

// commitLoop signs what is pending, up to MaxBatch at a time, until
// nothing is left.
func (b *Batcher) commitLoop() {
	for {
		b.gather()
		b.mu.Lock()
		n := min(len(b.pending), b.opts.MaxBatch)
		if n == 0 {
			b.signing, b.lastN = false, 0 // the next request after idle signs at once
			b.mu.Unlock()
			return
		}
		batch := b.pending[:n:n]
		b.pending = append([]*request(nil), b.pending[n:]...)
		// The target batch is sticky: it follows the largest recent batch
		// down slowly, so one small batch (callers answered at different
		// moments) does not ratchet batching away under steady load.
		b.lastN = max(n, b.lastN*15/16)
		b.mu.Unlock()
		start := time.Now()
		b.sign(batch)
		b.mu.Lock()
		b.lastSign = time.Since(start)
		b.mu.Unlock()
	}
}

// gatherFactor and maxGather bound how long the commit loop waits for a
// batch to fill: gatherFactor signing times, at most maxGather. Under
// steady load the batch fills and the wait ends early; the bound matters
// when a client went away, and is the most latency batching adds (2 ms,
// against an attestation max age of 30 s). The clients of one batch come
// back spread over a whole round of responses, which on a loaded 2-core
// appliance is several signing times; measured with make bench-serve (16
// keep-alive clients), a bound of 3 signing times gave batches of 7 and
// 8.6k nonce-bound attestations/s, 8 gave batches of 11 and 11–13k/s, and
// 20 (or 5 ms) gave larger batches but no more throughput.
const (
	gatherFactor = 8
	maxGather    = 2 * time.Millisecond
)

// gather lets the callers of recent batches, who were just answered and
// typically ask again at once, join the next one: while fewer requests
// wait than the target batch, it blocks until the arrival that completes
// the target wakes it, or until the gather bound passes. An idle signer
// (target of one, or none) does not wait at all. The wait is a channel
// and a timer, not a poll, so that gathering costs no CPU the clients
// and the TLS stack need.
func (b *Batcher) gather() {
	b.mu.Lock()
	target := min(b.lastN, b.opts.MaxBatch)
	if len(b.pending) >= target {
		b.mu.Unlock()
		return
	}
	wake := make(chan struct{})
	b.want, b.wake = target, wake
	limit := min(gatherFactor*b.lastSign, maxGather)
	b.mu.Unlock()
	t := time.NewTimer(limit)
	select {
	case <-wake:
	case <-t.C:
	}
	t.Stop()
	b.mu.Lock()
	if b.wake == wake {
		b.wake = nil
	}
	b.mu.Unlock()
}

func (b *Batcher) flush() {
	b.mu.Lock()
	batch := b.take()
	b.mu.Unlock()
	if len(batch) > 0 {
		b.sign(batch)
	}
}

// BatchStats counts nonce-bound requests and the signatures that served
// them; their ratio is the mean batch size.
func (b *Batcher) BatchStats() (signatures, requests uint64) {
	return b.signatures.Load(), b.batched.Load()
}

func (b *Batcher) sign(batch []*request) {
	b.signatures.Add(1)
	b.batched.Add(uint64(len(batch)))
	nonces := make([][]byte, len(batch))
	for i, r := range batch {
		nonces[i] = r.nonce
	}
	atts, err := b.attest(nonces)
	for i, r := range batch {
		if err != nil {
			r.done <- result{err: err}
		} else {
			r.done <- result{att: atts[i]}
		}
	}
}

func (b *Batcher) attest(nonces [][]byte) ([]*Attestation, error) {
	c, err := b.claims()
	if err != nil {
		return nil, err
	}
	return b.sig.Attest(c, nonces)
}

// Snapshot returns the no-nonce attestation, re-signed when it is older
// than Refresh (measured on Now) or was signed by a key no longer
// published.
func (b *Batcher) Snapshot() (*Attestation, error) {
	b.snapMu.Lock()
	defer b.snapMu.Unlock()
	now := b.opts.Now()
	if b.snap != nil && now.Sub(b.snapTime) < b.opts.Refresh && now.Sub(b.snapTime) >= 0 && b.published(b.snap.KeyID) {
		return b.snap, nil
	}
	atts, err := b.attest(nil)
	if err != nil {
		return nil, err
	}
	b.snap, b.snapTime = atts[0], now
	return b.snap, nil
}

func (b *Batcher) published(id string) bool {
	for _, k := range b.sig.Keys() {
		if k.ID == id {
			return true
		}
	}
	return false
}
