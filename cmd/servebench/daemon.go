package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/child"
	"github.com/aunsorm/timenode/netsvc/devtls"
	"github.com/aunsorm/timenode/signer"
)

// daemonPkg is built when no -daemon binary is given.
const daemonPkg = "github.com/aunsorm/timenode/cmd/timenoded"

// buildDaemon builds timenoded from the module servebench runs in.
func buildDaemon(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "timenoded")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, daemonPkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("servebench: go build %s: %v\n%s", daemonPkg, err, out)
	}
	return bin, nil
}

// daemon is a running `timenoded --sim` and an mTLS client setup for it.
type daemon struct {
	cmd       *exec.Cmd
	exited    chan struct{}
	logFile   string
	endpoints map[string]string
	// The development PKI the daemon wrote into its state directory.
	caFile, serverCert, serverKey string
	clientTLS                     *tls.Config
}

// startDaemon runs the daemon on free loopback ports with its state in
// dir/state, and reads back the bound endpoints.
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
		return nil, fmt.Errorf("servebench: start %s: %w", bin, err)
	}
	d := &daemon{cmd: cmd, exited: make(chan struct{}), logFile: logFile}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	if err := d.readEndpoints(ctx, state, 30*time.Second); err != nil {
		d.stop(io.Discard)
		return nil, err
	}
	return d, nil
}

func (d *daemon) readEndpoints(ctx context.Context, state string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		b, err := os.ReadFile(filepath.Join(state, "endpoints.json"))
		if err == nil && json.Unmarshal(b, &d.endpoints) == nil {
			break
		}
		if err := d.pause(ctx, deadline, "no endpoints.json"); err != nil {
			return err
		}
	}
	d.caFile = filepath.Join(state, devtls.CAFile)
	d.serverCert, d.serverKey = filepath.Join(state, devtls.CertFile), filepath.Join(state, devtls.KeyFile)
	caPEM, err := os.ReadFile(d.caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("servebench: no certificate in %s", d.caFile)
	}
	cert, err := tls.LoadX509KeyPair(d.endpoints["client_cert"], d.endpoints["client_key"])
	if err != nil {
		return fmt.Errorf("servebench: development client certificate: %w", err)
	}
	d.clientTLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	return nil
}

// pause waits a little before the next poll, or explains why not.
func (d *daemon) pause(ctx context.Context, deadline time.Time, what string) error {
	select {
	case <-d.exited:
		return fmt.Errorf("servebench: timenoded exited (%v); log:\n%s", d.cmd.ProcessState, d.logTail())
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(50 * time.Millisecond):
	}
	if time.Now().After(deadline) {
		return fmt.Errorf("servebench: timenoded: %s in time; log:\n%s", what, d.logTail())
	}
	return nil
}

// waitHealthy polls /health over mTLS until it answers 200.
func (d *daemon) waitHealthy(ctx context.Context, within time.Duration) error {
	c := d.client()
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(within)
	for {
		code, _, err := get(ctx, c, "https://"+d.endpoints["https"]+"/health")
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err := d.pause(ctx, deadline, "/health not 200"); err != nil {
			return err
		}
	}
}

// checkAttestation fetches one nonce-bound attestation and verifies it
// against /keys: the benchmark measures real, verifiable signatures.
func (d *daemon) checkAttestation(ctx context.Context) error {
	c := d.client()
	defer c.CloseIdleConnections()
	base := "https://" + d.endpoints["https"]
	code, body, err := get(ctx, c, base+"/keys")
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("servebench: /keys: %d %v", code, err)
	}
	var doc signer.KeysDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("servebench: /keys: %w", err)
	}
	keys, err := doc.PublicKeys()
	if err != nil {
		return fmt.Errorf("servebench: /keys: %w", err)
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	code, body, err = get(ctx, c, base+"/attestation?nonce="+hex.EncodeToString(nonce))
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("servebench: /attestation: %d %v %s", code, err, body)
	}
	var att signer.Attestation
	if err := json.Unmarshal(body, &att); err != nil {
		return fmt.Errorf("servebench: /attestation: %w", err)
	}
	if err := signer.NewVerifier(keys).Verify(&att, time.Now(), nonce); err != nil {
		return fmt.Errorf("servebench: the daemon's attestation does not verify: %w", err)
	}
	return nil
}

func (d *daemon) client() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: d.clientTLS.Clone()}}
}

func get(ctx context.Context, c *http.Client, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// stop interrupts the daemon, waits up to 15 s for it to drain and exit,
// then kills it. A daemon that did not exit cleanly is reported to w.
func (d *daemon) stop(w io.Writer) {
	select {
	case <-d.exited:
		return // already reported by whoever saw it exit
	default:
	}
	child.Stop(d.cmd.Process, d.exited, func() { _ = d.cmd.Process.Signal(os.Interrupt) }, 15*time.Second)
	if ps := d.cmd.ProcessState; ps == nil || !ps.Success() {
		fmt.Fprintf(w, "servebench: timenoded did not exit cleanly on SIGINT (%v); log:\n%s\n", ps, d.logTail())
	}
}

// logTail returns the end of the daemon's log.
func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.logFile)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
