package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/child"
)

// Each attack runs in a process of its own, as an attacker runs on a
// machine of its own: in the suite's process its thousands of goroutines
// and allocations stalled the legitimate clients' goroutines for hundreds
// of milliseconds, which measured the load generator, not the daemon.

// report is what an attacker process prints when it stops.
type report struct {
	Opened, Failed, Peak int64
	Codes                map[string]int64 `json:",omitempty"`
}

// runAttacker is the attacker process: it runs attack name against the
// daemon whose state directory is state, prints "ready" once the attack
// holds what it means to, and its report when ctx ends (SIGTERM).
func runAttacker(ctx context.Context, name, state string, conns int, stdout io.Writer) int {
	t, err := loadTarget(state)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var a *attack
	for _, c := range attacks(conns) {
		if c.name == name {
			a = c
		}
	}
	if a == nil {
		fmt.Fprintf(os.Stderr, "redteam: no attack %q\n", name)
		return 2
	}
	st := &attackStats{}
	done := make(chan struct{})
	go func() { a.run(ctx, t, st); close(done) }()
	for tick := time.NewTicker(50 * time.Millisecond); !a.ready(st); {
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "redteam: attackers still running 10 s after the stop")
	}
	r := report{Opened: st.opened.Load(), Failed: st.failed.Load(), Peak: st.peak.Load(), Codes: map[string]int64{}}
	st.codes.Range(func(k, v any) bool {
		r.Codes[k.(string)] = v.(interface{ Load() int64 }).Load()
		return true
	})
	_ = json.NewEncoder(stdout).Encode(r)
	return 0
}

// attackerProc is a running attacker process.
type attackerProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	out    *readyWriter
	errs   bytes.Buffer
}

// startAttacker starts this program as the attacker process for a and
// waits until it reports ready, at most ramp; it returns how long that
// took.
func startAttacker(ctx context.Context, a *attack, state string, conns int, ramp time.Duration) (*attackerProc, time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, 0, err
	}
	p := &attackerProc{exited: make(chan struct{}), out: newReadyWriter()}
	p.cmd = exec.Command(self, "-attack", a.name, "-state", state, "-conns", strconv.Itoa(conns))
	p.cmd.Stdout, p.cmd.Stderr = p.out, &p.errs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, 0, err
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	select {
	case <-p.out.ready:
	case <-time.After(ramp):
	case <-p.exited:
		return nil, 0, fmt.Errorf("redteam: attacker %s exited: %v\n%s", a.name, p.cmd.ProcessState, p.errs.String())
	case <-ctx.Done():
		p.stop()
		return nil, 0, ctx.Err()
	}
	return p, time.Since(start), nil
}

// stop ends the attack (SIGTERM, then SIGKILL after 15 s) and returns its
// report.
func (p *attackerProc) stop() (report, error) {
	child.Stop(p.cmd.Process, p.exited, func() { _ = p.cmd.Process.Signal(syscall.SIGTERM) }, 15*time.Second)
	var r report
	lines := strings.Split(strings.TrimSpace(p.out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		return r, errors.Join(fmt.Errorf("redteam: attacker report: %w", err), errors.New(p.errs.String()))
	}
	return r, nil
}

// readyWriter collects output and closes ready at the line "ready".
type readyWriter struct {
	mu    sync.Mutex
	b     bytes.Buffer
	once  sync.Once
	ready chan struct{}
}

func newReadyWriter() *readyWriter { return &readyWriter{ready: make(chan struct{})} }

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if bytes.Contains(w.b.Bytes(), []byte("ready\n")) {
		w.once.Do(func() { close(w.ready) })
	}
	return n, err
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
