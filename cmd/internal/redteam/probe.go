package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/latency"
)

// probe is a legitimate client, measured in every phase.
type probe struct {
	name   string
	every  time.Duration
	client *http.Client
	url    func() (string, []byte) // URL and the nonce it asks for
	header http.Header
	judged bool // its latency counts towards the verdict
}

// sample is one probe request.
type sample struct {
	took time.Duration
	err  error
}

// result summarises a probe over a phase.
type result struct {
	n, ok         int
	p50, p99, max time.Duration
	firstErr      error
}

// successPct is the share of requests that succeeded, in percent.
func (r result) successPct() float64 {
	if r.n == 0 {
		return 0
	}
	return 100 * float64(r.ok) / float64(r.n)
}

// summarise sorts the latencies of all requests, failed ones included
// (a request that timed out took its timeout: leaving it out would hide
// exactly what the suite looks for).
func summarise(samples []sample) result {
	r := result{n: len(samples)}
	lat := make([]time.Duration, 0, len(samples))
	for _, s := range samples {
		if s.err == nil {
			r.ok++
		} else if r.firstErr == nil {
			r.firstErr = s.err
		}
		lat = append(lat, s.took)
	}
	slices.Sort(lat)
	r.p50, r.p99 = latency.Percentile(lat, 50), latency.Percentile(lat, 99)
	if len(lat) > 0 {
		r.max = lat[len(lat)-1]
	}
	return r
}

// run sends one request every p.every (or as soon as the last answered)
// until ctx is done.
func (p *probe) run(ctx context.Context) []sample {
	var out []sample
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.client.CloseIdleConnections()
			return out
		case <-t.C:
		}
		start := time.Now()
		err := p.once()
		out = append(out, sample{took: time.Since(start), err: err})
	}
}

const probeTimeout = 2 * time.Second

func (p *probe) once() error {
	url, nonce := p.url()
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header = p.header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	if nonce != nil {
		var doc struct {
			Nonce string `json:"nonce"`
		}
		if err := json.Unmarshal(body, &doc); err != nil || doc.Nonce != hex.EncodeToString(nonce) {
			return fmt.Errorf("attestation without our nonce: %v %.200s", err, body)
		}
	}
	return nil
}

// legitimateProbes are the clients the suite protects, all from
// 127.0.0.1: an mTLS client on a new connection per request (the case the
// flood used to lock out), one on a kept-alive HTTP/2 connection (the
// client library's way), and the gateway's anonymous health check.
func legitimateProbes(d *daemon) []*probe {
	local := &net.Dialer{Timeout: probeTimeout, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	transport := func(withCert, keepAlive bool) *http.Transport {
		return &http.Transport{DialContext: local.DialContext, TLSClientConfig: d.tlsConfig(withCert),
			DisableKeepAlives: !keepAlive, ForceAttemptHTTP2: keepAlive, MaxIdleConnsPerHost: 1}
	}
	attestation := func() (string, []byte) {
		nonce := make([]byte, 16)
		_, _ = rand.Read(nonce)
		return "https://" + d.endpoints["https"] + "/attestation?nonce=" + hex.EncodeToString(nonce), nonce
	}
	health := func() (string, []byte) { return "https://" + d.endpoints["https"] + "/health", nil }
	return []*probe{
		{name: "mTLS, new connection", every: 50 * time.Millisecond, judged: true,
			client: &http.Client{Transport: transport(true, false)}, url: attestation},
		{name: "mTLS, kept alive (h2)", every: 20 * time.Millisecond, judged: true,
			client: &http.Client{Transport: transport(true, true)}, url: attestation},
		{name: "gateway check, no cert", every: 100 * time.Millisecond,
			client: &http.Client{Transport: transport(false, false)}, url: health,
			header: http.Header{"X-Aunsorm-Mesh": {"gateway"}}},
	}
}
