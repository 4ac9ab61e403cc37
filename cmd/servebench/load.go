package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/latency"
)

// target is one thing to measure: url returns the request URL given a
// fresh random hex nonce (targets without a nonce ignore it).
type target struct {
	name string
	url  func(nonce string) string
}

// result is what one target achieved in the measured window.
type result struct {
	name     string
	window   time.Duration
	lat      []time.Duration // successful requests, sorted
	bytes    int64           // response body bytes of successful requests
	errors   int
	firstErr error
}

// rate is successful requests per second in the measured window.
func (r result) rate() float64 {
	if r.window <= 0 {
		return 0
	}
	return float64(len(r.lat)) / r.window.Seconds()
}

// percentile returns the p-th percentile latency (nearest rank), 0 when
// nothing succeeded.
func (r result) percentile(p float64) time.Duration {
	return latency.Percentile(r.lat, p)
}

func (r result) bytesPerResp() int64 {
	if len(r.lat) == 0 {
		return 0
	}
	return r.bytes / int64(len(r.lat))
}

// merge pools two measurements of the same target.
func (r result) merge(o result) result {
	m := result{name: o.name, window: r.window + o.window, bytes: r.bytes + o.bytes,
		errors: r.errors + o.errors, firstErr: r.firstErr}
	if m.firstErr == nil {
		m.firstErr = o.firstErr
	}
	m.lat = append(append(make([]time.Duration, 0, len(r.lat)+len(o.lat)), r.lat...), o.lat...)
	slices.Sort(m.lat)
	return m
}

// worker is one client: one keep-alive HTTP/1.1 connection.
type worker struct {
	lat      []time.Duration
	bytes    int64
	errors   int
	firstErr error
}

// load drives tg with conns clients for warmup, then measures for
// duration: a request counts if it started and ended inside the window.
func load(ctx context.Context, tg target, conf *tls.Config, conns int, warmup, duration time.Duration) (result, error) {
	start := time.Now()
	from, to := start.Add(warmup), start.Add(warmup+duration)
	ws := make([]worker, conns)
	var wg sync.WaitGroup
	for i := range ws {
		w := &ws[i]
		var protos http.Protocols
		protos.SetHTTP1(true)
		tr := &http.Transport{TLSClientConfig: conf.Clone(), Protocols: &protos,
			MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
		client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			nonce := make([]byte, 16)
			hexNonce := make([]byte, 32)
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(to) {
					return
				}
				_, _ = rand.Read(nonce)
				hex.Encode(hexNonce, nonce)
				n, err := fetch(ctx, client, tg.url(string(hexNonce)))
				t1 := time.Now()
				if t0.Before(from) || t1.After(to) {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					w.errors++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.lat = append(w.lat, t1.Sub(t0))
				w.bytes += n
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	r := result{name: tg.name, window: duration}
	for _, w := range ws {
		r.lat = append(r.lat, w.lat...)
		r.bytes += w.bytes
		r.errors += w.errors
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
	}
	slices.Sort(r.lat)
	return r, nil
}

// fetch makes one GET, reads the whole body and wants 200.
func fetch(ctx context.Context, c *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return n, nil
}
