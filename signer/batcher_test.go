package signer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestBatcherSharesOneSignature(t *testing.T) {
	s := testSigner(t)
	calls := 0
	var mu sync.Mutex
	bt := NewBatcher(s, func() (Claims, error) { mu.Lock(); calls++; mu.Unlock(); return claims(), nil },
		BatchOptions{Window: 50 * time.Millisecond, MaxBatch: 8})
	var wg sync.WaitGroup
	atts := make([]*Attestation, 8)
	for i := range atts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := bt.Attest(context.Background(), []byte(fmt.Sprintf("nonce-%d", i)))
			if err != nil {
				t.Error(err)
			}
			atts[i] = a
		}()
	}
	wg.Wait()
	v := NewVerifier(s.Keys())
	for i, a := range atts {
		if err := v.Verify(a, t0, []byte(fmt.Sprintf("nonce-%d", i))); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if a.Sequence != atts[0].Sequence {
			t.Errorf("response %d in batch %d, want one batch (%d)", i, a.Sequence, atts[0].Sequence)
		}
	}
	if calls != 1 {
		t.Errorf("claims taken %d times, want once per batch", calls)
	}
}

func TestBatcherSnapshot(t *testing.T) {
	s := testSigner(t)
	now := t0
	bt := NewBatcher(s, func() (Claims, error) { return claims(), nil }, BatchOptions{Refresh: 15 * time.Second, Now: func() time.Time { return now }})
	a, _ := bt.Attest(context.Background(), nil)
	now = now.Add(10 * time.Second)
	b, _ := bt.Snapshot()
	now = now.Add(6 * time.Second)
	c, _ := bt.Snapshot()
	if a != b || c.Sequence == a.Sequence {
		t.Fatalf("sequences %d %d %d: want the snapshot reused for 10 s and re-signed after 16 s", a.Sequence, b.Sequence, c.Sequence)
	}
}

func TestGroupCommitBatchesUnderLoadAndNeverWaitsWhenIdle(t *testing.T) {
	s := testSigner(t)
	var mu sync.Mutex
	var signatures int
	bt := NewBatcher(s, func() (Claims, error) {
		mu.Lock()
		signatures++
		mu.Unlock()
		return claims(), nil
	}, BatchOptions{MaxBatch: 64})

	// Idle: one request is signed at once, alone.
	if _, err := bt.Attest(context.Background(), []byte{1}); err != nil || signatures != 1 {
		t.Fatalf("idle request: err %v, %d signatures; want it signed alone at once", err, signatures)
	}
	// Loaded: 40 concurrent requests need far fewer than 40 signatures.
	var wg sync.WaitGroup
	v := NewVerifier(s.Keys())
	// All 40 ask at once: started one by one, each could finish before
	// the next is scheduled on a busy machine, and nothing would batch.
	start := make(chan struct{})
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			nonce := []byte{byte(i), 7}
			att, err := bt.Attest(context.Background(), nonce)
			if err == nil {
				err = v.Verify(att, t0, nonce)
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if signatures < 2 || signatures > 30 {
		t.Fatalf("%d signatures for 41 requests, want 2..30 (group commit)", signatures)
	}
	t.Logf("41 requests in %d signatures", signatures)
}

// TestGatherFillsBatchesFromClosedLoopClients drives the batcher the way
// keep-alive clients do (each asks again as soon as it is answered) and
// checks that the batches approach the number of clients, then that a
// lone request after the load is still answered although the target batch
// it would wait for never fills.
func TestGatherFillsBatchesFromClosedLoopClients(t *testing.T) {
	s := testSigner(t)
	bt := NewBatcher(s, func() (Claims, error) { return claims(), nil }, BatchOptions{MaxBatch: 64})
	const clients, rounds = 16, 40
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if _, err := bt.Attest(context.Background(), []byte{byte(c), byte(r)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	sigs, reqs := bt.BatchStats()
	if reqs != clients*rounds {
		t.Fatalf("%d requests counted, want %d", reqs, clients*rounds)
	}
	mean := float64(reqs) / float64(sigs)
	t.Logf("%d requests in %d signatures, mean batch %.1f of %d clients", reqs, sigs, mean, clients)
	if mean < clients/2 {
		t.Errorf("mean batch %.1f, want at least %d: closed-loop clients should share signatures", mean, clients/2)
	}

	// The target batch is now about 16; one request alone must not wait
	// for 15 that never come.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := bt.Attest(ctx, []byte("alone")); err != nil {
		t.Fatalf("lone request after load: %v", err)
	}
}
