package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aunsorm/timenode/signer"
)

// ClockUnavailable is reported when no fresh attestation can be had:
// none was ever verified, or the last one is older than MaxAge (then
// Cause is a *signer.StaleAttestation), or refreshing fails.
type ClockUnavailable struct {
	Cause error
}

func (e *ClockUnavailable) Error() string {
	return fmt.Sprintf("client: ClockUnavailable: %v", e.Cause)
}

// Unwrap returns the cause, so errors.As finds a StaleAttestation.
func (e *ClockUnavailable) Unwrap() error { return e.Cause }

// Current returns the last verified attestation if it is at most MaxAge
// old on the local clock, else a *ClockUnavailable.
func (c *Client) Current() (*signer.Attestation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		cause := c.lastErr
		if cause == nil {
			cause = errors.New("no attestation verified yet")
		}
		return nil, &ClockUnavailable{Cause: cause}
	}
	age := c.cfg.Now().Sub(c.last.Time())
	if age > c.cfg.MaxAge {
		var cause error = &signer.StaleAttestation{Age: age, MaxAge: c.cfg.MaxAge}
		if c.lastErr != nil {
			cause = errors.Join(cause, c.lastErr)
		}
		return nil, &ClockUnavailable{Cause: cause}
	}
	return c.last, nil
}

// Backoff is a capped exponential backoff with jitter: the n-th delay
// (from 0) is drawn uniformly from [d/2, d] with d = min(Max, Base·2ⁿ).
type Backoff struct {
	Base, Max time.Duration
}

// Delay returns the delay before retry n.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Max
	if n < 32 && b.Base<<n < b.Max && b.Base<<n > 0 {
		d = b.Base << n
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// Run refreshes every Interval until ctx is done. After a failure it
// reconnects (re-reading the TLS CA) and retries with Backoff{Interval/8,
// Interval}, so a recovered server is found within one interval.
func (c *Client) Run(ctx context.Context) {
	bo := Backoff{Base: max(c.cfg.Interval/8, 50*time.Millisecond), Max: c.cfg.Interval}
	failures := 0
	for {
		wait := c.cfg.Interval
		if _, err := c.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait = bo.Delay(failures)
			failures++
			c.log.Warn("clock attestation refresh failed", "err", err, "retry_in_ms", wait.Milliseconds(), "failures", failures)
			if rerr := c.reconnect(); rerr != nil {
				c.log.Warn("reconnect failed", "err", rerr)
			}
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
