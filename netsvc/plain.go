package netsvc

import (
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// The plain HTTP listener (--listen) has no TLS and no client identity:
// anyone who reaches it is anonymous, and what it says can be changed on
// the way. It serves what an in-cluster readiness probe and the runbook's
// check need and nothing that costs a signature or that a client would
// trust: GET /health, and GET /attestation without a nonce (the cached
// snapshot, signed at most once per REFRESH_INTERVAL_SECS whatever the
// request rate). A nonce-bound attestation or /keys there is refused with
// 403 naming the HTTPS port. Requests are rate limited per source.
// See docs/SECURITY.md.
const (
	// PlainRequestsPerSecond is the sustained rate one source (an IPv4
	// address or IPv6 /64) may make on the plain listener.
	PlainRequestsPerSecond = 20
	// PlainRequestBurst is how many it may make at once after a pause.
	PlainRequestBurst = 40
	// plainMaxSources bounds the rate limiter's memory: a full table
	// forgets the sources that are back to a full bucket, then, if that
	// frees nothing, every source (each then gets one burst back).
	plainMaxSources = 4096
)

// reasonHTTPSOnly is why the plain listener refuses a request.
const reasonHTTPSOnly = "the plain HTTP listener serves only GET /health and the cached GET /attestation snapshot (no nonce); " +
	"nonce-bound attestations and /keys are served on the HTTPS port with a client certificate"

// refusePlain answers 403 for what only the HTTPS listener serves.
func refusePlain(w http.ResponseWriter) {
	writeJSON(w, http.StatusForbidden, errorBody{Error: "https_required", Reason: reasonHTTPSOnly})
}

// plainGate rate-limits requests that arrived without TLS, per source.
// Over the limit the answer is 429 and the connection is closed: a client
// looping on one kept-alive connection must pay for a new one.
func plainGate(next http.Handler, lim *rateLimiter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			next.ServeHTTP(w, r)
			return
		}
		var src netip.Prefix
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			src = sourcePrefix(ap.Addr())
		}
		if !lim.allow(src) {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusTooManyRequests, errorBody{Error: "rate_limited",
				Reason: "too many requests from this address on the plain HTTP listener"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// rateLimiter is a token bucket per source.
type rateLimiter struct {
	rate, burst float64
	now         func() time.Time

	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(perSecond, burst float64, now func() time.Time) *rateLimiter {
	if now == nil {
		now = time.Now
	}
	return &rateLimiter{rate: perSecond, burst: burst, now: now, buckets: map[netip.Prefix]*bucket{}}
}

// allow takes a token from src's bucket if there is one.
func (l *rateLimiter) allow(src netip.Prefix) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[src]
	if b == nil {
		if len(l.buckets) >= plainMaxSources {
			l.forget(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[src] = b
	}
	// A clock that went back refills nothing (and takes nothing away).
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// forget drops the buckets that have refilled; if none has, all of them.
func (l *rateLimiter) forget(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= plainMaxSources {
		clear(l.buckets)
	}
}
