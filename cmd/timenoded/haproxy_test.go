package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer"
)

// TestHAProxyFailover puts Debian's HAProxy in front of two simulated
// daemons, the way a customer runs the appliance: HAProxy checks
// GET /health over mTLS (presenting the gateway certificate and the
// X-Aunsorm-Mesh header) with inter 1s fall 2 rise 2. Cutting one node's
// PPS drives it LOCKED → HOLDOVER → UNSYNCHRONIZED (--max-holdover-bound
// 1us ends holdover at once); HAProxy must mark it DOWN, keep the other UP,
// and every client request through HAProxy must keep succeeding. Restoring
// the PPS must bring the node back UP.
//
// Requests already sent to the failing node when it stops being servable
// are answered 503 by the daemon (it never serves time it cannot vouch
// for). A customer configures HAProxy to retry those on the other server
// (retry-on 503 conn-failure, retries 3, option redispatch 1); the test
// does the same and then accepts no failed request at all.
func TestHAProxyFailover(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		missingTool(t, "haproxy", "haproxy")
	}
	pki := newServicePKI(t)
	nodes := make([]*simDaemon, 2)
	for i := range nodes {
		o := pki.options()
		o.args = append(o.args, "--max-holdover-bound", "1us")
		nodes[i] = startSim(t, o)
	}
	for _, d := range nodes {
		d.waitHealthy(t, 60*time.Second)
	}
	keys := append(fetchKeys(t, nodes[0]), fetchKeys(t, nodes[1])...)

	hp := startHAProxy(t, haproxy, pki, nodes)
	// HAProxy starts servers UP before it has checked them: wait for a
	// passed check on both so "UP" means what it says.
	hp.waitState(t, 15*time.Second, func(s map[string]serverState) bool {
		return s["s1"].up() && s["s2"].up() && s["s1"].checkPassed() && s["s2"].checkPassed()
	}, "both servers UP with a passed check")

	clients := startFrontendClients(hp.frontend, keys, 2)
	defer clients.stop()
	time.Sleep(time.Second)
	if n := clients.ok.Load(); n == 0 {
		t.Fatalf("no request succeeded through HAProxy before the cut (failures %d, first %v)", clients.failed.Load(), clients.firstErr.Load())
	}

	// Cut the PPS of node 1 and time the daemon's /health and HAProxy.
	d1 := nodes[0]
	simControl(t, d1, "/sim/pps?on=false")
	cut := time.Now()
	okAtCut := clients.ok.Load()
	var healthDown, haproxyDown time.Duration
	// s2Left records the first time node 2 was seen not UP, with its
	// HAProxy row and its own /health, to tell a check timeout from a
	// node that really lost its clock.
	var s2Left string
	watchS2 := func(st map[string]serverState) {
		if s2Left == "" && !st["s2"].up() {
			s2Left = fmt.Sprintf("at %s: HAProxy row %v; node 2 /health: %s", time.Now().Format("15:04:05.000"), st["s2"], plainHealthBody(t, nodes[1]))
		}
	}
	for deadline := cut.Add(20 * time.Second); healthDown == 0 || haproxyDown == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: /health 503 after %v, HAProxy DOWN after %v (0 = not yet); HAProxy log:\n%s",
				time.Since(cut), healthDown, haproxyDown, hp.log.String())
		}
		if healthDown == 0 && plainHealth(t, d1) == http.StatusServiceUnavailable {
			healthDown = time.Since(cut)
		}
		st := hp.state(t)
		if haproxyDown == 0 && !st["s1"].up() {
			haproxyDown = time.Since(cut)
		}
		watchS2(st)
	}
	t.Logf("PPS cut: node 1 /health 503 after %v; HAProxy marked s1 DOWN after %v (%v after /health turned)",
		healthDown.Round(time.Millisecond), haproxyDown.Round(time.Millisecond), (haproxyDown - healthDown).Round(time.Millisecond))
	if haproxyDown < healthDown {
		t.Errorf("HAProxy marked s1 DOWN (%v) before its /health turned 503 (%v)", haproxyDown, healthDown)
	}
	// Serve through node 2 alone for a while.
	time.Sleep(2 * time.Second)
	if st := hp.state(t); st["s1"].up() || !st["s2"].up() || s2Left != "" {
		t.Fatalf("while node 1 is unsynchronized: s1 %v, s2 %v; want s1 DOWN, s2 UP throughout (s2 left UP: %s)",
			st["s1"], st["s2"], s2Left)
	}
	if served := clients.ok.Load() - okAtCut; served < 10 {
		t.Errorf("only %d requests served through HAProxy after the cut", served)
	}

	// Restore the PPS: node 1 re-acquires lock and HAProxy brings it back.
	simControl(t, d1, "/sim/pps?on=true")
	restored := time.Now()
	var healthUp, haproxyUp time.Duration
	for deadline := restored.Add(40 * time.Second); healthUp == 0 || haproxyUp == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: /health 200 after %v, HAProxy UP after %v (0 = not yet); HAProxy log:\n%s\nnode 1 log:\n%s",
				time.Since(restored), healthUp, haproxyUp, hp.log.String(), d1.log.String())
		}
		if healthUp == 0 && plainHealth(t, d1) == http.StatusOK {
			healthUp = time.Since(restored)
		}
		st := hp.state(t)
		if haproxyUp == 0 && st["s1"].up() {
			haproxyUp = time.Since(restored)
		}
		watchS2(st)
	}
	t.Logf("PPS restored: node 1 /health 200 after %v; HAProxy marked s1 UP after %v",
		healthUp.Round(time.Millisecond), haproxyUp.Round(time.Millisecond))
	if haproxyUp < healthUp {
		t.Errorf("HAProxy marked s1 UP (%v) before its /health turned 200 (%v)", haproxyUp, healthUp)
	}
	// Node 1 takes traffic again.
	before := hp.sessions(t, "s1")
	time.Sleep(time.Second)
	if after := hp.sessions(t, "s1"); after <= before {
		t.Errorf("s1 served no request in the second after it came back (sessions %d → %d)", before, after)
	}
	clients.stop()
	if s2Left != "" {
		t.Errorf("s2 left UP during the test, first %s", s2Left)
	}
	t.Logf("through HAProxy: %d attestations verified, %d failed", clients.ok.Load(), clients.failed.Load())
	if f := clients.failed.Load(); f != 0 {
		t.Fatalf("%d requests through HAProxy failed (first: %v); want 0; HAProxy log:\n%s", f, clients.firstErr.Load(), hp.log.String())
	}
	if !strings.Contains(hp.log.String(), "Health check for server be/s1 failed") {
		t.Errorf("option log-health-checks logged no failed check for s1:\n%s", hp.log.String())
	}
}

// haproxyRun is a HAProxy child process with its stats socket.
type haproxyRun struct {
	frontend string // host:port of the plain HTTP frontend
	sock     string
	log      *lockedBuffer
}

// startHAProxy writes the configuration and runs haproxy -db in front of
// the nodes' HTTPS ports, presenting the gateway client certificate.
func startHAProxy(t *testing.T, haproxy string, pki *servicePKI, nodes []*simDaemon) *haproxyRun {
	t.Helper()
	dir := t.TempDir()
	var gw []byte
	for _, f := range []string{pki.gwCert, pki.gwKey} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		gw = append(gw, b...)
	}
	gwPEM := filepath.Join(dir, "gateway.pem")
	if err := os.WriteFile(gwPEM, gw, 0o600); err != nil {
		t.Fatal(err)
	}
	hp := &haproxyRun{frontend: freeLoopbackAddr(t), sock: filepath.Join(dir, "admin.sock"), log: &lockedBuffer{}}
	var servers strings.Builder
	for i, d := range nodes {
		fmt.Fprintf(&servers, "    server s%d %s check\n", i+1, d.endpoints["https"])
	}
	cfg := fmt.Sprintf(`global
    log stdout format raw local0 info
    stats socket %[1]s mode 600 level admin

defaults
    mode http
    log global
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    # What a customer configures: a request the daemon answers 503 (it
    # turned unservable while the request was in flight) or a refused
    # connection is retried on another server.
    retries 3
    retry-on 503 conn-failure
    option redispatch 1

frontend fe
    bind %[2]s
    default_backend be

backend be
    balance roundrobin
    option httpchk
    http-check send meth GET uri /health hdr X-Aunsorm-Mesh gateway
    http-check expect status 200
    option log-health-checks
    default-server inter 1s fall 2 rise 2 ssl verify required ca-file %[3]s crt %[4]s sni str(localhost) check-sni localhost verifyhost localhost
%[5]s`, hp.sock, hp.frontend, pki.caFile, gwPEM, servers.String())
	cfgFile := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(haproxy, "-c", "-f", cfgFile).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
	cmd := exec.Command(haproxy, "-db", "-f", cfgFile)
	cmd.Stdout, cmd.Stderr = hp.log, hp.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("haproxy log:\n%s", hp.log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := hp.command("show info"); err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("haproxy exited: %v\n%s", cmd.ProcessState, hp.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy stats socket not answering within 10 s:\n%s", hp.log.String())
		}
	}
	return hp
}

// command sends one command to the stats socket and returns the answer
// (HAProxy closes a non-interactive connection after answering).
func (hp *haproxyRun) command(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", hp.sock, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// serverState is one row of `show servers state`, by column name.
type serverState map[string]string

// up reports srv_op_state 2 (SRV_ST_RUNNING); 0 is stopped (DOWN).
func (s serverState) up() bool { return s["srv_op_state"] == "2" }

// checkPassed reports srv_check_result 3 (CHK_RES_PASSED): the last
// health check succeeded.
func (s serverState) checkPassed() bool { return s["srv_check_result"] == "3" }

// state returns the backend's servers by name.
func (hp *haproxyRun) state(t *testing.T) map[string]serverState {
	t.Helper()
	out, err := hp.command("show servers state be")
	if err != nil {
		t.Fatalf("stats socket: %v", err)
	}
	servers, err := parseServersState(out)
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	return servers
}

// parseServersState parses `show servers state` output: a version line,
// a "# name name ..." header, then one row per server.
func parseServersState(out string) (map[string]serverState, error) {
	var header []string
	servers := map[string]serverState{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if h, ok := strings.CutPrefix(line, "# "); ok {
			header = strings.Fields(h)
			continue
		}
		fields := strings.Fields(line)
		if header == nil || len(fields) < len(header) {
			continue // the version line, blank lines
		}
		s := serverState{}
		for i, name := range header {
			s[name] = fields[i]
		}
		servers[s["srv_name"]] = s
	}
	if header == nil || len(servers) == 0 {
		return nil, errors.New("show servers state: no header or no servers")
	}
	return servers, nil
}

// waitState polls the stats socket every 50 ms until ok holds.
func (hp *haproxyRun) waitState(t *testing.T, within time.Duration, ok func(map[string]serverState) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := hp.state(t)
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %v: %v\nHAProxy log:\n%s", what, within, st, hp.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sessions returns the total sessions HAProxy sent to server srv in
// backend be (the stot column of `show stat`).
func (hp *haproxyRun) sessions(t *testing.T, srv string) int {
	t.Helper()
	out, err := hp.command("show stat")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if len(lines) == 0 {
		t.Fatal("show stat: empty")
	}
	col := -1
	for i, name := range strings.Split(strings.TrimPrefix(lines[0], "# "), ",") {
		if name == "stot" {
			col = i
		}
	}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) > col && col >= 0 && f[0] == "be" && f[1] == srv {
			n, err := strconv.Atoi(f[col])
			if err != nil {
				t.Fatalf("show stat: stot %q: %v", f[col], err)
			}
			return n
		}
	}
	t.Fatalf("show stat: no row for be/%s:\n%s", srv, out)
	return 0
}

// frontendClients fetch nonce-bound attestations through HAProxy and
// verify each against the keys of both nodes.
type frontendClients struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	once       sync.Once
}

func startFrontendClients(addr string, keys []signer.PublicKey, n int) *frontendClients {
	ctx, cancel := context.WithCancel(context.Background())
	c := &frontendClients{cancel: cancel}
	v := signer.NewVerifier(keys)
	for range n {
		client := &http.Client{Timeout: 10 * time.Second}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for ctx.Err() == nil {
				if err := fetchThrough(ctx, client, addr, v); err != nil {
					if ctx.Err() == nil {
						c.failed.Add(1)
						c.firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				c.ok.Add(1)
			}
		}()
	}
	return c
}

// stop ends the clients and waits for them.
func (c *frontendClients) stop() {
	c.once.Do(func() {
		c.cancel()
		c.wg.Wait()
	})
}

func fetchThrough(ctx context.Context, client *http.Client, addr string, v *signer.Verifier) error {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/attestation?nonce="+hex.EncodeToString(nonce), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d: %s", time.Now().Format("15:04:05.000"), resp.StatusCode, body)
	}
	var att signer.Attestation
	if err := json.Unmarshal(body, &att); err != nil {
		return err
	}
	return v.Verify(&att, time.Now(), nonce)
}

// simControl posts to a simulation control on the node's plain listener.
func simControl(t *testing.T, d *simDaemon, path string) {
	t.Helper()
	resp, err := http.Post("http://"+d.endpoints["http"]+path, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
}

// plainHealth returns the status of the node's /health on its plain
// listener (the same handler as on HTTPS, without the handshake cost).
func plainHealth(t *testing.T, d *simDaemon) int {
	t.Helper()
	resp, err := http.Get("http://" + d.endpoints["http"] + "/health")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// plainHealthBody returns the node's /health document, for diagnostics.
func plainHealthBody(t *testing.T, d *simDaemon) string {
	t.Helper()
	resp, err := http.Get("http://" + d.endpoints["http"] + "/health")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, bytes.Join(bytes.Fields(b), []byte(" ")))
}

// freeLoopbackAddr returns a loopback address with a port free a moment
// ago, for a child that cannot report the port it bound.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestHAProxyKeepsARecoveringNode: a node whose PPS comes back after a
// short outage (holdover within its bound) keeps /health at 200 through
// the outage and the re-acquisition, so HAProxy never takes it out. A
// site-wide GNSS event would otherwise empty the pool at the moment the
// sky returns.
func TestHAProxyKeepsARecoveringNode(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		missingTool(t, "haproxy", "haproxy")
	}
	pki := newServicePKI(t)
	nodes := []*simDaemon{startSim(t, pki.options()), startSim(t, pki.options())}
	for _, d := range nodes {
		d.waitHealthy(t, 60*time.Second)
	}
	hp := startHAProxy(t, haproxy, pki, nodes)
	hp.waitState(t, 15*time.Second, func(s map[string]serverState) bool {
		return s["s1"].up() && s["s2"].up() && s["s1"].checkPassed() && s["s2"].checkPassed()
	}, "both servers UP with a passed check")

	d1 := nodes[0]
	var healthDown, left string
	watch := func(phase string, d time.Duration) {
		t.Helper()
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if healthDown == "" && plainHealth(t, d1) != http.StatusOK {
				healthDown = phase + ": " + plainHealthBody(t, d1)
			}
			if st := hp.state(t); left == "" && !st["s1"].up() {
				left = fmt.Sprintf("%s: HAProxy row %v", phase, st["s1"])
			}
		}
	}
	simControl(t, d1, "/sim/pps?on=false")
	watch("outage", 6*time.Second)
	simControl(t, d1, "/sim/pps?on=true")
	watch("recovery", 15*time.Second)
	if healthDown != "" || left != "" {
		t.Fatalf("a node recovering from a 6 s outage left the pool: /health not 200 (%s), HAProxy (%s)\nnode log:\n%s",
			healthDown, left, d1.log.String())
	}
	if body := plainHealthBody(t, d1); !strings.Contains(body, `"LOCKED"`) {
		t.Errorf("15 s after the PPS returned node 1 says %s, want LOCKED", body)
	}
	if !strings.Contains(d1.log.String(), "from=HOLDOVER to=LOCKED") {
		t.Errorf("node 1 did not lock again straight from holdover; log:\n%s", d1.log.String())
	}
}
