package netsvc

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/timing"
)

// fakeNow is a settable clock for the rate limiter.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// newTestAPI is a locked node with a development key.
func newTestAPI(t *testing.T, now func() time.Time) http.Handler {
	t.Helper()
	key, err := signer.GenerateDevelopment(rand.Reader, time.Now().Add(-time.Hour), 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sig := signer.NewSigner(key, time.Now)
	st := &timing.Status{State: timing.Locked, Stratum: 1, ErrorBound: time.Microsecond, BoundAsOf: time.Now(), Updated: time.Now()}
	api := &API{Clock: wallClock{}, Timing: lockedTiming{st}, Signer: sig, AuthorityID: "test",
		MaxAge: 30 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now}
	api.Batcher = signer.NewBatcher(sig, api.Claims, signer.BatchOptions{Refresh: time.Hour})
	return api.Handler()
}

// do makes one request, over "TLS" (as the HTTPS listener) or not.
func do(h http.Handler, target string, overTLS bool, remote string) (int, errorBody, map[string]any) {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if overTLS {
		r.TLS = &tls.ConnectionState{}
	}
	if remote != "" {
		r.RemoteAddr = remote
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var eb errorBody
	var doc map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &eb)
	_ = json.Unmarshal(w.Body.Bytes(), &doc)
	return w.Code, eb, doc
}

func TestAttestationQuery(t *testing.T) {
	h := newTestAPI(t, nil)
	tests := []struct {
		name      string
		query     string
		wantCode  int
		wantError string
		wantNonce string // echoed nonce on 200
	}{
		{"no query: the snapshot", "", http.StatusOK, "", ""},
		{"a nonce", "nonce=00112233", http.StatusOK, "", "00112233"},
		{"upper-case hex", "nonce=ABCDEF", http.StatusOK, "", "abcdef"},
		{"semicolon after the nonce", "nonce=aa;x", http.StatusBadRequest, "bad_query", ""},
		{"semicolon as separator", "x=1;nonce=aa", http.StatusBadRequest, "bad_query", ""},
		{"two nonces", "nonce=aa&nonce=bb", http.StatusBadRequest, "bad_query", ""},
		{"empty nonce", "nonce=", http.StatusBadRequest, "bad_query", ""},
		{"nonce without =", "nonce", http.StatusBadRequest, "bad_query", ""},
		{"unknown parameter", "nonce=aa&cachebust=1", http.StatusBadRequest, "bad_query", ""},
		{"only an unknown parameter", "x=1", http.StatusBadRequest, "bad_query", ""},
		{"stray &", "nonce=aa&", http.StatusBadRequest, "bad_query", ""},
		{"leading &", "&nonce=aa", http.StatusBadRequest, "bad_query", ""},
		{"percent-encoded name", "n%6Fnce=aa", http.StatusBadRequest, "bad_query", ""},
		{"percent-encoded value", "nonce=%61%61", http.StatusBadRequest, "bad_nonce", ""},
		{"not hex", "nonce=zz", http.StatusBadRequest, "bad_nonce", ""},
		{"odd length", "nonce=abc", http.StatusBadRequest, "bad_nonce", ""},
		{"64 bytes", "nonce=" + strings.Repeat("ab", 64), http.StatusOK, "", strings.Repeat("ab", 64)},
		{"65 bytes", "nonce=" + strings.Repeat("ab", 65), http.StatusBadRequest, "bad_nonce", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := "/attestation"
			if tt.query != "" {
				target += "?" + tt.query
			}
			code, eb, doc := do(h, target, true, "")
			if code != tt.wantCode || eb.Error != tt.wantError {
				t.Fatalf("%s: %d %q (%s), want %d %q", target, code, eb.Error, eb.Reason, tt.wantCode, tt.wantError)
			}
			if code == http.StatusBadRequest && eb.Reason == "" {
				t.Error("a 400 without a reason")
			}
			if code == http.StatusOK {
				got, _ := doc["nonce"].(string)
				if got != tt.wantNonce {
					t.Errorf("nonce %q, want %q", got, tt.wantNonce)
				}
			}
		})
	}
}

// TestPlainListenerPolicy: without TLS only /health and the cached
// snapshot are served; nonce-bound attestations (a signature each) and
// /keys are refused with a reason naming the HTTPS port.
func TestPlainListenerPolicy(t *testing.T) {
	h := newTestAPI(t, nil)
	tests := []struct {
		target  string
		overTLS bool
		want    int
	}{
		{"/health", false, http.StatusOK},
		{"/attestation", false, http.StatusOK},
		{"/attestation?nonce=0011", false, http.StatusForbidden},
		{"/attestation?nonce=aa;x", false, http.StatusBadRequest},
		{"/keys", false, http.StatusForbidden},
		{"/keys", true, http.StatusOK},
		{"/attestation?nonce=0011", true, http.StatusOK},
	}
	for i, tt := range tests {
		code, eb, _ := do(h, tt.target, tt.overTLS, "192.0.2.1:1000")
		if code != tt.want {
			t.Errorf("%d: %s (TLS %v): %d %v, want %d", i, tt.target, tt.overTLS, code, eb, tt.want)
		}
		if code == http.StatusForbidden && (eb.Error != "https_required" || !strings.Contains(eb.Reason, "HTTPS")) {
			t.Errorf("%s: 403 body %+v, want https_required naming HTTPS", tt.target, eb)
		}
	}
}

func TestPlainListenerRateLimit(t *testing.T) {
	clk := &fakeNow{t: time.Unix(1e9, 0)}
	h := newTestAPI(t, clk.Now)
	served := func(n int, remote string) (ok int) {
		for range n {
			if code, _, _ := do(h, "/health", false, remote); code == http.StatusOK {
				ok++
			}
		}
		return ok
	}
	if got := served(PlainRequestBurst+10, "192.0.2.1:1000"); got != PlainRequestBurst {
		t.Errorf("a burst from one source: %d served, want %d", got, PlainRequestBurst)
	}
	if got := served(5, "192.0.2.2:1000"); got != 5 {
		t.Errorf("another source: %d of 5 served", got)
	}
	clk.Add(time.Second)
	if got := served(PlainRequestsPerSecond+10, "192.0.2.1:2000"); got != PlainRequestsPerSecond {
		t.Errorf("one second later: %d served, want %d", got, PlainRequestsPerSecond)
	}
	code, eb, _ := do(h, "/health", false, "192.0.2.1:3000")
	if code != http.StatusTooManyRequests || eb.Error != "rate_limited" {
		t.Errorf("over the limit: %d %+v", code, eb)
	}
	// HTTPS requests are not the plain listener's and not limited here.
	if code, _, _ := do(h, "/health", true, "192.0.2.1:4000"); code != http.StatusOK {
		t.Errorf("over TLS: %d", code)
	}
}

// TestRateLimiterForgets: the table of sources stays bounded; a full
// table first forgets the sources whose buckets have refilled.
func TestRateLimiterForgets(t *testing.T) {
	clk := &fakeNow{t: time.Unix(1e9, 0)}
	l := newRateLimiter(PlainRequestsPerSecond, PlainRequestBurst, clk.Now)
	src := func(i int) netip.Prefix {
		return sourcePrefix(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	for i := range plainMaxSources {
		l.allow(src(i))
	}
	clk.Add(time.Hour)
	busy := src(plainMaxSources + 1)
	for range PlainRequestBurst {
		l.allow(busy)
	}
	if n := len(l.buckets); n != 1 {
		t.Fatalf("after a refill the full table kept %d sources, want only the newcomer", n)
	}
	if l.allow(busy) {
		t.Error("the newcomer's spent bucket was forgotten")
	}
	for i := range 2 * plainMaxSources {
		l.allow(src(i))
	}
	if n := len(l.buckets); n > plainMaxSources {
		t.Errorf("%d sources in the table, want at most %d", n, plainMaxSources)
	}
}
