package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/child"
	"github.com/aunsorm/timenode/netsvc/devtls"
)

// target is what clients need to reach a daemon: its endpoints and the
// development PKI it wrote into its state directory.
type target struct {
	state     string
	endpoints map[string]string
	roots     *x509.CertPool
	clientCrt tls.Certificate
}

// loadTarget reads endpoints.json and the development PKI from state.
func loadTarget(state string) (*target, error) {
	t := &target{state: state}
	b, err := os.ReadFile(filepath.Join(state, "endpoints.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &t.endpoints); err != nil {
		return nil, fmt.Errorf("redteam: endpoints.json: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(state, devtls.CAFile))
	if err != nil {
		return nil, err
	}
	t.roots = x509.NewCertPool()
	if !t.roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("redteam: no certificate in %s", devtls.CAFile)
	}
	if t.clientCrt, err = tls.LoadX509KeyPair(t.endpoints["client_cert"], t.endpoints["client_key"]); err != nil {
		return nil, fmt.Errorf("redteam: development client certificate: %w", err)
	}
	return t, nil
}

// daemon is a running `timenoded --sim` on loopback ports chosen by the
// kernel.
type daemon struct {
	*target
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile string
}

// startDaemon runs bin with its state in dir and waits until it serves a
// healthy /health over mTLS. The daemon dies with this process
// (Pdeathsig) if it is killed before stop.
func startDaemon(ctx context.Context, bin, dir string) (*daemon, error) {
	state := filepath.Join(dir, "state")
	logFile := filepath.Join(dir, "timenoded.log")
	logs, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer logs.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, "--sim", "--state-dir", state, "--https", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
		"--listen", "127.0.0.1:0", "--ntp", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redteam: start %s: %w", bin, err)
	}
	d := &daemon{cmd: cmd, exited: make(chan struct{}), logFile: logFile}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	if err := d.await(ctx, state); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// await reads endpoints.json and the development PKI, then polls /health
// until the simulated clock is locked.
func (d *daemon) await(ctx context.Context, state string) error {
	deadline := time.Now().Add(90 * time.Second)
	pause := func(what string) error {
		select {
		case <-d.exited:
			return fmt.Errorf("redteam: timenoded exited (%v); log:\n%s", d.cmd.ProcessState, d.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redteam: timenoded: %s after 90 s; log:\n%s", what, d.logTail())
		}
		return nil
	}
	for {
		t, err := loadTarget(state)
		if err == nil {
			d.target = t
			break
		}
		if err := pause("no endpoints.json and development PKI"); err != nil {
			return err
		}
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: d.tlsConfig(true)}}
	defer c.CloseIdleConnections()
	for {
		resp, err := c.Get("https://" + d.endpoints["https"] + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := pause("/health not 200"); err != nil {
			return err
		}
	}
}

// tlsConfig is a client config for the daemon's HTTPS port, with the
// development client certificate or without any.
func (d *target) tlsConfig(withCert bool, protos ...string) *tls.Config {
	c := &tls.Config{RootCAs: d.roots, ServerName: "localhost", MinVersion: tls.VersionTLS13, NextProtos: protos}
	if withCert {
		c.Certificates = []tls.Certificate{d.clientCrt}
	}
	return c
}

// rssBytes reads the daemon's resident set size from /proc.
func (d *daemon) rssBytes() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the daemon's user and system CPU time so far.
func (d *daemon) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): state is
	// field 3, utime and stime are 14 and 15, in clock ticks (100/s on
	// Linux for every architecture Go supports).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// metrics returns the daemon's exposition as series → value for the
// series that start with one of prefixes.
func (d *daemon) metrics(prefixes ...string) map[string]float64 {
	out := map[string]float64{}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + d.endpoints["metrics"] + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				if i := strings.LastIndexByte(line, ' '); i > 0 {
					v, _ := strconv.ParseFloat(line[i+1:], 64)
					out[line[:i]] = v
				}
			}
		}
	}
	return out
}

// stop interrupts the daemon and waits up to 15 s before killing it; it
// reports a daemon that did not exit cleanly.
func (d *daemon) stop() error {
	child.Stop(d.cmd.Process, d.exited, func() { _ = d.cmd.Process.Signal(os.Interrupt) }, 15*time.Second)
	if ps := d.cmd.ProcessState; ps == nil || !ps.Success() {
		return fmt.Errorf("redteam: timenoded did not exit cleanly on SIGINT (%v); log:\n%s", ps, d.logTail())
	}
	return nil
}

// logTail returns the end of the daemon's log.
func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.logFile)
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, len(b)-4000):])
}
