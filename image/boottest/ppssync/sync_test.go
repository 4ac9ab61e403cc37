package ppssync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// world is simulated true time, shared by the fake host clock, the fake
// guest raw clock and the simulated path delays. It only moves when the
// path or the host says so, so every exchange is exact and repeatable.
type world struct {
	mu sync.Mutex
	t  time.Duration

	hostBase   time.Time     // host UTC at t = 0
	hostStep   time.Duration // added to the host clock (a step or drift)
	rawBase    time.Duration // guest raw clock at t = 0
	turnaround time.Duration // true time that passes on each host clock read
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	w.t += d
	w.mu.Unlock()
}

// raw is the guest's raw clock.
func (w *world) raw() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rawBase + w.t
}

// hostNow is the host's UTC; reading it takes turnaround.
func (w *world) hostNow() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.hostBase.Add(w.t + w.hostStep)
	w.t += w.turnaround
	return now
}

// trueOffset is host UTC minus the raw clock.
func (w *world) trueOffset() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Duration(w.hostBase.UnixNano()) + w.hostStep - w.rawBase
}

func (w *world) setStep(d time.Duration) {
	w.mu.Lock()
	w.hostStep = d
	w.mu.Unlock()
}

// path is one direction of the link: the n-th message takes delays[n]
// (cycling) and is preceded by noise[n] (if any), written separately.
type path struct {
	w      io.Writer
	world  *world
	delays []time.Duration
	noise  []string

	mu sync.Mutex
	n  int
}

func (p *path) Write(b []byte) (int, error) {
	p.mu.Lock()
	n := p.n
	p.n++
	p.mu.Unlock()
	if len(p.delays) > 0 {
		p.world.advance(p.delays[n%len(p.delays)])
	}
	if n < len(p.noise) && p.noise[n] != "" {
		if _, err := io.WriteString(p.w, p.noise[n]); err != nil {
			return 0, err
		}
	}
	return p.w.Write(b)
}

// link runs Serve on the host end of two pipes and returns the guest's
// ends; the returned stop closes the guest's writing end and waits for
// Serve, which must end cleanly.
func link(t *testing.T, w *world, up, down *path) (guestR io.Reader, guestW io.Writer, stop func()) {
	t.Helper()
	g2hR, g2hW := io.Pipe()
	h2gR, h2gW := io.Pipe()
	up.w, up.world = g2hW, w
	down.w, down.world = h2gW, w
	served := make(chan error, 1)
	go func() {
		err := Serve(context.Background(), g2hR, down, w.hostNow)
		h2gW.Close()
		served <- err
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			g2hW.Close()
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return h2gR, up, stop
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestEstimateRecoversOffset(t *testing.T) {
	// A host far in the future and a guest raw clock that started at its
	// boot: the offset is about 60 years.
	hostBase := time.Date(2036, 2, 8, 6, 28, 15, 250_000_000, time.UTC)
	tests := []struct {
		name       string
		up, down   []time.Duration
		turnaround time.Duration
		noiseUp    []string
		noiseDown  []string
		rounds     int
	}{
		{
			name: "symmetric path", rounds: 8,
			up:   []time.Duration{ms(2), ms(1), ms(3)},
			down: []time.Duration{ms(2), ms(1), ms(3)},
		},
		{
			name: "asymmetric path, host turnaround", rounds: 8,
			up:         []time.Duration{ms(4), ms(1), ms(7), ms(2), ms(9), ms(3), ms(5), ms(6)},
			down:       []time.Duration{ms(3), ms(2.5), ms(1), ms(8), ms(0.5), ms(4), ms(2), ms(2)},
			turnaround: 150 * time.Microsecond,
		},
		{
			name: "one-way delay only", rounds: 4,
			up:   []time.Duration{ms(10), ms(12), ms(11), ms(10)},
			down: []time.Duration{0},
		},
		{
			name: "noise both ways", rounds: 8,
			up:   []time.Duration{ms(3), ms(1.5), ms(2)},
			down: []time.Duration{ms(1), ms(1.5), ms(4)},
			noiseUp: []string{
				"sudo: unable to resolve host timenode: Name or service not known\n",
				"",
				"Warning: no newline before the request: ",
				strings.Repeat("#", 3*MaxLine) + "\n",
				"PPSSYNC/1 RSP 1 2 3 4\r\n", // a pty echoing the host's answers back
			},
			noiseDown: []string{
				"Welcome to the timenode appliance\r\n",
				"PPSSYNC/1 RSP 999 1 2 3\n", // not ours: unknown seq
				"PPSSYNC/1 RSP 3 1 2 3\n",   // seq 3 with a wrong t1: stale
				"PPSSYNC/1 REQ 1 1\n",
				"\n\n\x00\xff garbage\n",
				strings.Repeat("\x1b[0m", MaxLine) + "\n",
			},
		},
		{
			name: "single round", rounds: 1,
			up:   []time.Duration{ms(0.3)},
			down: []time.Duration{ms(0.7)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{hostBase: hostBase, rawBase: 17*time.Second + 123456789, turnaround: tt.turnaround}
			up := &path{delays: tt.up, noise: tt.noiseUp}
			down := &path{delays: tt.down, noise: tt.noiseDown}
			r, wr, _ := link(t, w, up, down)
			g := NewGuest(r, wr, w.raw)
			g.Timeout = 10 * time.Second
			a, err := g.Estimate(context.Background(), tt.rounds)
			if err != nil {
				t.Fatalf("Estimate: %v", err)
			}
			// Expected: the exchange with the smallest round trip; the
			// host's second clock read adds one turnaround to the way back.
			var wantRTT, wantErr time.Duration
			for i := 0; i < tt.rounds; i++ {
				u := tt.up[i%len(tt.up)]
				d := tt.down[i%len(tt.down)] + tt.turnaround
				if rtt := u + d; i == 0 || rtt <= wantRTT {
					wantRTT, wantErr = rtt, (u-d)/2
				}
			}
			if a.RTT != wantRTT {
				t.Errorf("RTT = %v, want %v (the smallest)", a.RTT, wantRTT)
			}
			if a.Exchanges != tt.rounds {
				t.Errorf("Exchanges = %d, want %d", a.Exchanges, tt.rounds)
			}
			gotErr := a.Offset() - w.trueOffset()
			if d := gotErr - wantErr; d < -1 || d > 1 {
				t.Errorf("offset error = %v, want %v (half the path asymmetry)", gotErr, wantErr)
			}
			if gotErr.Abs() > a.Uncertainty {
				t.Errorf("offset error %v exceeds the stated uncertainty %v", gotErr, a.Uncertainty)
			}
			if a.Uncertainty != (wantRTT+1)/2 {
				t.Errorf("Uncertainty = %v, want rtt/2 = %v", a.Uncertainty, wantRTT/2)
			}
			// The anchor maps raw readings to host time with that offset.
			raw := w.raw()
			host := w.hostBase.Add(raw - w.rawBase)
			if d := a.HostTime(raw).Sub(host); d != gotErr {
				t.Errorf("HostTime(now) is off by %v, want %v", d, gotErr)
			}
			if len(tt.noiseDown) > 0 && g.Ignored() == 0 {
				t.Errorf("Ignored() = 0 after noise")
			}
		})
	}
}

func TestEstimateResync(t *testing.T) {
	w := &world{hostBase: time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC), rawBase: 5 * time.Second}
	up := &path{delays: []time.Duration{ms(1)}}
	down := &path{delays: []time.Duration{ms(1)}}
	r, wr, stop := link(t, w, up, down)
	g := NewGuest(r, wr, w.raw)
	first, err := g.Estimate(context.Background(), 8)
	if err != nil {
		t.Fatalf("first Estimate: %v", err)
	}
	if got := first.Offset() - w.trueOffset(); got != 0 {
		t.Fatalf("first offset error %v, want 0 on a symmetric path", got)
	}
	// A minute later the guest's raw clock has fallen 3 ms behind.
	w.advance(time.Minute)
	w.setStep(3 * time.Millisecond)
	second, err := g.Estimate(context.Background(), 8)
	if err != nil {
		t.Fatalf("resync Estimate: %v", err)
	}
	if got := second.Offset() - first.Offset(); got != 3*time.Millisecond {
		t.Fatalf("resync moved the offset by %v, want 3ms", got)
	}
	rate, unc, ok := DriftRate(first, second)
	if !ok || rate < 49.9e-6 || rate > 50.1e-6 || unc < 33e-6 || unc > 34e-6 {
		t.Fatalf("DriftRate = %g ±%g (ok %v), want 50e-6 (3 ms a minute) ±33e-6 (2 × 1 ms a minute)", rate, unc, ok)
	}
	// The host ends the stream: the guest sees it.
	stop()
	select {
	case <-g.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the host closed the stream")
	}
	if !errors.Is(g.Err(), io.EOF) {
		t.Fatalf("Err() = %v, want EOF", g.Err())
	}
	if _, err := g.Estimate(context.Background(), 8); !errors.Is(err, io.EOF) {
		t.Fatalf("Estimate after the end = %v, want an error wrapping EOF", err)
	}
}

// TestEstimateFunctionSharesStream calls the package-level Estimate twice
// on one stream, as a guest that resynchronises does.
func TestEstimateFunctionSharesStream(t *testing.T) {
	w := &world{hostBase: time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC), rawBase: time.Hour}
	up := &path{delays: []time.Duration{ms(2)}}
	down := &path{delays: []time.Duration{ms(1)}, noise: []string{"motd\n", "", "", "", "more noise\n"}}
	r, wr, stop := link(t, w, up, down)
	for i := range 3 {
		a, err := Estimate(r, wr, w.raw, 4)
		if err != nil {
			t.Fatalf("Estimate %d: %v", i, err)
		}
		if got := a.Offset() - w.trueOffset(); got != ms(0.5) {
			t.Fatalf("Estimate %d: offset error %v, want 0.5ms", i, got)
		}
		w.advance(10 * time.Second)
	}
	stop()
	// Either the guest has seen the end of its stream, or its request
	// meets the closed pipe.
	if _, err := Estimate(r, wr, w.raw, 4); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Estimate after the end = %v, want an error wrapping EOF or ErrClosedPipe", err)
	}
}

func TestEstimateFailures(t *testing.T) {
	raw := func() time.Duration { return time.Second }
	tests := []struct {
		name string
		// host answers each request the guest sends on the guest's
		// stream (it may close it).
		host   func(req Message, w *io.PipeWriter)
		out    io.Writer // instead of the scripted host
		rounds int
		want   error
		text   string
	}{
		{
			name: "host silent, only noise",
			host: func(req Message, w *io.PipeWriter) {
				io.WriteString(w, "Last login: never\nPPSSYNC/1 RSP 1 999 1 2\n")
			},
			rounds: 8, want: ErrTimeout, text: "no answer from the host to request 1 within 200ms (2 other lines ignored",
		},
		{
			name:   "stream ends",
			host:   func(_ Message, w *io.PipeWriter) { io.WriteString(w, "bye\n"); w.Close() },
			rounds: 8, want: io.EOF, text: "ended before the answer to request 1",
		},
		{
			name:   "write fails",
			out:    failWriter{},
			rounds: 8, want: io.ErrClosedPipe, text: "send request 1",
		},
		{
			name:   "no rounds",
			out:    io.Discard,
			rounds: 0, text: "0 rounds",
		},
		{
			name: "clocks inconsistent",
			host: func(req Message, w *io.PipeWriter) {
				// An answer whose host send precedes its receive.
				rsp := Message{Kind: Response, Seq: req.Seq, T1: req.T1, T2: 20, T3: 10}
				io.WriteString(w, rsp.String()+"\n")
			},
			rounds: 1, text: "none of 1 exchanges was consistent",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			out := tt.out
			if out == nil {
				out = &scriptedHost{w: pw, answer: tt.host}
			}
			g := NewGuest(pr, out, raw)
			g.Timeout = 200 * time.Millisecond
			start := time.Now()
			_, err := g.Estimate(context.Background(), tt.rounds)
			if err == nil {
				t.Fatal("Estimate succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v does not wrap %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %v", el)
			}
		})
	}
}

// scriptedHost receives the guest's requests and has answer reply to each
// on the guest's stream.
type scriptedHost struct {
	w      *io.PipeWriter
	answer func(req Message, w *io.PipeWriter)
}

func (h *scriptedHost) Write(b []byte) (int, error) {
	m, err := ParseLine(string(b))
	if err != nil {
		return 0, err
	}
	go h.answer(m, h.w)
	return len(b), nil
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestEstimateCancel(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	g := NewGuest(pr, io.Discard, func() time.Duration { return 0 })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := g.Estimate(ctx, 8); !errors.Is(err, context.Canceled) {
		t.Fatalf("Estimate = %v, want context.Canceled", err)
	}
}

func TestServe(t *testing.T) {
	base := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	rsp := func(seq uint64, t1 int64, call int64) string {
		return Message{Kind: Response, Seq: seq, T1: t1, T2: base + call*1000, T3: base + (call+1)*1000}.String() + "\n"
	}
	tests := []struct {
		name, in, want string
	}{
		{"one request", "PPSSYNC/1 REQ 1 42\n", rsp(1, 42, 0)},
		{"unterminated last request", "PPSSYNC/1 REQ 1 42", rsp(1, 42, 0)},
		{"noise skipped", "sudo: unable to resolve host x\n\nPPSSYNC/1 REQ 1 42\r\nbanner\nPPSSYNC/1 REQ 2 -7\n",
			rsp(1, 42, 0) + rsp(2, -7, 2)},
		{"noise glued before a request", "Warning: added key.PPSSYNC/1 REQ 3 5\n", rsp(3, 5, 0)},
		{"own answers echoed are skipped", "PPSSYNC/1 RSP 1 2 3 4\nPPSSYNC/1 REQ 1 9\n", rsp(1, 9, 0)},
		{"overlong line skipped", strings.Repeat("PPSSYNC/1 REQ 1 1 ", MaxLine) + "\nPPSSYNC/1 REQ 2 2\n", rsp(2, 2, 0)},
		{"nothing", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int64
			now := func() time.Time { c := calls; calls++; return time.Unix(0, base+c*1000) }
			var out strings.Builder
			if err := Serve(context.Background(), strings.NewReader(tt.in), &out, now); err != nil {
				t.Fatalf("Serve: %v", err)
			}
			if out.String() != tt.want {
				t.Fatalf("output:\n%s\nwant:\n%s", out.String(), tt.want)
			}
		})
	}
}

func TestServeErrors(t *testing.T) {
	t.Run("context", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		if err := Serve(ctx, pr, io.Discard, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve = %v, want context.Canceled", err)
		}
	})
	t.Run("write", func(t *testing.T) {
		err := Serve(context.Background(), strings.NewReader("PPSSYNC/1 REQ 1 1\n"), failWriter{}, nil)
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("Serve = %v, want the write error", err)
		}
	})
	t.Run("read", func(t *testing.T) {
		pr, pw := io.Pipe()
		pw.CloseWithError(fmt.Errorf("ssh died"))
		err := Serve(context.Background(), pr, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), "ssh died") {
			t.Fatalf("Serve = %v, want the read error", err)
		}
	})
}
