package netsvc

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/timing"
)

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

type lockedTiming struct{ st *timing.Status }

func (l lockedTiming) Status() *timing.Status { return l.st }

// BenchmarkAttestationHandler measures the handler's CPU per request
// (no TLS, no network) for nonce-bound and snapshot attestations.
func BenchmarkAttestationHandler(b *testing.B) {
	key, err := signer.GenerateDevelopment(rand.Reader, time.Now().Add(-time.Hour), 48*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	sig := signer.NewSigner(key, time.Now)
	st := &timing.Status{State: timing.Locked, Stratum: 1, ErrorBound: time.Microsecond, BoundAsOf: time.Now(), Updated: time.Now()}
	api := &API{Clock: wallClock{}, Timing: lockedTiming{st}, Signer: sig, AuthorityID: "bench",
		MaxAge: 30 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	api.Batcher = signer.NewBatcher(sig, api.Claims, signer.BatchOptions{Refresh: time.Hour})
	h := api.Handler()
	for _, path := range []string{"/attestation?nonce=%016x", "/attestation"} {
		b.Run(path[:min(len(path), 18)], func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				var i uint64
				for pb.Next() {
					i++
					url := path
					if len(path) > 12 {
						url = fmt.Sprintf(path, i)
					}
					w := httptest.NewRecorder()
					r := httptest.NewRequest(http.MethodGet, url, nil)
					r.TLS = &tls.ConnectionState{} // as on the HTTPS listener
					h.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatalf("%s: %d %s", url, w.Code, w.Body)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
