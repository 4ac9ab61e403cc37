package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSummarise(t *testing.T) {
	var samples []sample
	for i := range 100 {
		samples = append(samples, sample{took: time.Duration(i+1) * time.Millisecond})
	}
	samples[50].err = errors.New("refused")
	r := summarise(samples)
	if r.n != 100 || r.ok != 99 || r.successPct() != 99 || r.p50 != 50*time.Millisecond || r.p99 != 99*time.Millisecond || r.max != 100*time.Millisecond {
		t.Errorf("summary %+v", r)
	}
	if r.firstErr == nil || summarise(nil).successPct() != 0 {
		t.Error("first error lost, or an empty phase counted as a success")
	}
}

func TestJudge(t *testing.T) {
	probes := []*probe{{name: "mtls", judged: true}, {name: "gateway"}}
	base := map[string]result{"mtls": {n: 100, ok: 100, p99: 5 * time.Millisecond}, "gateway": {n: 10, ok: 10, p99: 5 * time.Millisecond}}
	ok := func(p99 time.Duration) result { return result{n: 100, ok: 100, p99: p99} }
	tests := []struct {
		name string
		row  row
		rep  report
		want []string // substrings of the failures, in order
	}{
		{"within every bound", row{rssMiB: 50, results: map[string]result{"mtls": ok(49 * time.Millisecond), "gateway": ok(time.Second)}}, report{}, nil},
		{"mTLS p99 over 10x", row{results: map[string]result{"mtls": ok(51 * time.Millisecond), "gateway": ok(0)}}, report{}, []string{"mtls: p99"}},
		{"gateway under 99 %", row{results: map[string]result{"mtls": ok(0), "gateway": {n: 100, ok: 98}}}, report{}, []string{"gateway: 98.0 %"}},
		{"memory", row{rssMiB: maxRSSMiB + 1, results: map[string]result{"mtls": ok(0), "gateway": ok(0)}}, report{}, []string{"RSS"}},
		{"signatures for the plain listener", row{results: map[string]result{"mtls": ok(0), "gateway": ok(0)}},
			report{Codes: map[string]int64{"nonce 403": 10, "nonce 200": 1}}, []string{"signed 1 nonce-bound"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judge(tt.row, tt.rep, base, probes)
			if len(got) != len(tt.want) {
				t.Fatalf("failures %q, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("failure %q, want one about %q", got[i], w)
				}
			}
		})
	}
}

// TestHPACKAndFrames decodes what the HTTP/2 attack sends with a
// server's eyes: the frames parse and the header block carries the
// request.
func TestHPACKAndFrames(t *testing.T) {
	block := hpackGet("localhost", "/health", "x-aunsorm-mesh", "gateway", "x-long", strings.Repeat("a", 300))
	b := h2Frame(nil, h2FrameSettings, 0, 0, h2Settings(h2SettingInitialWindowSize, 0))
	b = h2Frame(b, h2FrameHeaders, h2FlagEndStream|h2FlagEndHeaders, 3, block)
	r := bytes.NewReader(b)
	typ, _, stream, payload, err := h2ReadFrame(r, nil)
	if err != nil || typ != h2FrameSettings || stream != 0 || !bytes.Equal(payload, []byte{0, 4, 0, 0, 0, 0}) {
		t.Fatalf("settings frame: %d %d %x %v", typ, stream, payload, err)
	}
	typ, flags, stream, payload, err := h2ReadFrame(r, nil)
	if err != nil || typ != h2FrameHeaders || flags != 0x5 || stream != 3 {
		t.Fatalf("headers frame: %d %x %d %v", typ, flags, stream, err)
	}
	got := decodeLiterals(t, payload)
	want := []string{":method=GET", ":scheme=https", ":path=/health", ":authority=localhost", "x-aunsorm-mesh=gateway", "x-long=" + strings.Repeat("a", 300)}
	if !slices.Equal(got, want) {
		t.Errorf("header block decodes to %q, want %q", got, want)
	}
	if _, _, _, _, err := h2ReadFrame(r, nil); err != io.EOF {
		t.Errorf("after the last frame: %v", err)
	}
}

// decodeLiterals decodes the subset of HPACK hpackGet writes.
func decodeLiterals(t *testing.T, b []byte) []string {
	t.Helper()
	static := map[byte]string{1: ":authority", 2: ":method=GET", 4: ":path", 7: ":scheme=https"}
	str := func() string {
		n, i := int(b[0]&0x7f), 1
		if n == 127 {
			for m := 0; ; m += 7 {
				n += int(b[i]&0x7f) << m
				i++
				if b[i-1]&0x80 == 0 {
					break
				}
			}
		}
		s := string(b[i : i+n])
		b = b[i+n:]
		return s
	}
	var out []string
	for len(b) > 0 {
		c := b[0]
		b = b[1:]
		switch {
		case c&0x80 != 0:
			out = append(out, static[c&0x7f])
		case c == 0:
			name := str()
			out = append(out, name+"="+str())
		default:
			out = append(out, static[c]+"="+str())
		}
	}
	return out
}

func TestPacer(t *testing.T) {
	p := newPacer(100)
	start := time.Now()
	for range 11 {
		if !p.wait(context.Background()) {
			t.Fatal("wait refused")
		}
	}
	if el := time.Since(start); el < 95*time.Millisecond {
		t.Errorf("11 events at 100/s took %v, want at least 100 ms", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p = newPacer(0.001)
	p.wait(ctx) // the first is immediate
	if p.wait(ctx) {
		t.Error("wait went ahead after its context ended")
	}
}

// TestHoldFloodReopens runs the slot-holding flood against a server that
// closes every connection at once: it keeps reopening, at the paced
// rate, from the attack's source addresses, and stops with its context.
func TestHoldFloodReopens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sources := make(chan string, 1000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sources <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	tgt := &target{endpoints: map[string]string{"https": ln.Addr().String()}}
	st := &attackStats{}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	holdFlood(4, 2, 200, 40, rawTCP)(ctx, tgt, st)
	if n := st.opened.Load(); n < 6 || n > 40 {
		t.Errorf("%d connections opened in 0.5 s (4 at 200/s, then 40/s), want about 20", n)
	}
	if st.open.Load() != 0 {
		t.Errorf("%d still counted open after the flood returned", st.open.Load())
	}
	seen := map[string]bool{}
	for len(sources) > 0 {
		seen[<-sources] = true
	}
	if !seen["127.0.1.1"] || !seen["127.0.1.2"] || seen["127.0.0.1"] {
		t.Errorf("sources %v, want 127.0.1.1 and 127.0.1.2 only", seen)
	}
}

// TestProbeChecksTheNonce: a probe fails an answer that does not carry
// the nonce it asked for.
func TestProbeChecksTheNonce(t *testing.T) {
	echo := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := r.URL.Query().Get("nonce")
		if !echo {
			n = "00"
		}
		io.WriteString(w, `{"nonce":"`+n+`"}`)
	}))
	defer srv.Close()
	p := &probe{client: srv.Client(), url: func() (string, []byte) { return srv.URL + "/attestation?nonce=0102", []byte{1, 2} }}
	if err := p.once(); err != nil {
		t.Fatal(err)
	}
	echo = false
	if err := p.once(); err == nil {
		t.Error("an attestation for another nonce passed")
	}
}
