package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/version"
	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc"
	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/roughtime"
	"github.com/aunsorm/timenode/signer"
)

// binaries built once for the end-to-end tests.
var bin struct {
	once             sync.Once
	dir              string
	daemon, ctl, err string
	skip             bool // err is about the environment: no toolchain
}

func buildBinaries(t *testing.T) (daemon, ctl string) {
	t.Helper()
	bin.once.Do(func() {
		dir, err := os.MkdirTemp("", "timenode-e2e-bin")
		if err != nil {
			bin.err = err.Error()
			return
		}
		bin.dir = dir
		if bin.daemon, err = testbin.Build(dir, "timenoded", "."); err == nil {
			bin.ctl, err = testbin.Build(dir, "timenodectl", "../timenodectl")
		}
		if err != nil {
			bin.err, bin.skip = err.Error(), errors.Is(err, testbin.ErrNoToolchain)
		}
	})
	if bin.skip {
		t.Skip(bin.err)
	}
	if bin.err != "" {
		t.Fatal(bin.err)
	}
	return bin.daemon, bin.ctl
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

// lockedBuffer collects the daemon's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// simDaemon is a running `timenoded --sim` on free loopback ports.
type simDaemon struct {
	endpoints map[string]string
	client    *http.Client // presents the development client certificate
	anon      *http.Client // presents none
	log       *lockedBuffer
	proc      *os.Process
	stop      func() // interrupts the daemon and waits for it; idempotent
}

// simOptions adjusts a simulated daemon: extra environment and flags, and
// the client certificate the test clients present (default: the
// development client certificate the daemon writes).
type simOptions struct {
	env, args             []string
	clientCert, clientKey string
	// stateDir is the daemon's state directory, to start a second
	// daemon on what the first left (default: a new one).
	stateDir string
}

// caFile is the CA the clients trust: the --client-ca given to the daemon
// also signed its server certificate in these tests.
func (o simOptions) caFile() string {
	for i := 0; i+1 < len(o.args); i++ {
		if o.args[i] == "--client-ca" {
			return o.args[i+1]
		}
	}
	return ""
}

func startSim(t *testing.T, o simOptions) *simDaemon {
	t.Helper()
	daemon, _ := buildBinaries(t)
	state := o.stateDir
	if state == "" {
		state = t.TempDir()
	}
	// The endpoints a previous daemon on this directory wrote are not
	// this one's.
	if err := os.Remove(filepath.Join(state, "endpoints.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, daemon, append([]string{"--sim", "--state-dir", state,
		"--https", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--ntp", "127.0.0.1:0", "--agent-check", "127.0.0.1:0", "--roughtime", "127.0.0.1:0", "--nts-ke", "127.0.0.1:0"}, o.args...)...)
	cmd.Env = append(os.Environ(), o.env...)
	logs := &lockedBuffer{}
	cmd.Stderr, cmd.Stdout = logs, logs
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			_ = cmd.Wait() // reports the cancellation itself; judge the exit status
			if ps := cmd.ProcessState; ps == nil || !ps.Success() {
				t.Errorf("daemon did not exit cleanly on SIGINT: %v", ps)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	d := &simDaemon{log: logs, proc: cmd.Process, stop: stop}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(state, "endpoints.json"))
		if err == nil && json.Unmarshal(b, &d.endpoints) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon wrote no endpoints.json in 30 s; log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	caFile := d.endpoints["ca"]
	if f := o.caFile(); f != "" {
		caFile = f
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate in", d.endpoints["ca"])
	}
	clientCert, clientKey := d.endpoints["client_cert"], d.endpoints["client_key"]
	if o.clientCert != "" {
		clientCert, clientKey = o.clientCert, o.clientKey
	}
	cert, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	d.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}}}
	d.anon = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}
	return d
}

// metric returns the value of the first exposition line that starts with
// series (a name with optional labels), or -1 if there is none.
func (d *simDaemon) metric(t *testing.T, series string) float64 {
	t.Helper()
	return d.metrics(t, series)[0]
}

// metrics returns the values of series from one scrape, -1 for each
// one absent.
func (d *simDaemon) metrics(t *testing.T, series ...string) []float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.endpoints["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	lines := strings.Split(string(b), "\n")
	out := make([]float64, len(series))
	for i, s := range series {
		out[i] = -1
		for _, line := range lines {
			if rest, ok := strings.CutPrefix(line, s+" "); ok {
				var v float64
				if _, err := fmt.Sscan(rest, &v); err == nil {
					out[i] = v
					break
				}
			}
		}
	}
	return out
}

func (d *simDaemon) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := d.client.Get("https://" + d.endpoints["https"] + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// waitHealthy polls /health and returns the codes seen before the first 200.
func (d *simDaemon) waitHealthy(t *testing.T, within time.Duration) []int {
	t.Helper()
	var seen []int
	within = testbin.Wait(within)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		code, body := d.get(t, "/health")
		if code == http.StatusOK {
			return seen
		}
		if len(seen) == 0 || seen[len(seen)-1] != code {
			seen = append(seen, code)
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("/health answered %d: %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("/health not 200 within %v; log:\n%s", within, d.log.String())
	return nil
}

func TestEndToEndSimulation(t *testing.T) {
	d := startSim(t, simOptions{env: []string{"NTP_AUTHORITY_ID=ntp.test.aunsorm"}})
	before := d.waitHealthy(t, 60*time.Second)
	if len(before) == 0 || before[0] != http.StatusServiceUnavailable {
		t.Fatalf("/health before lock answered %v, want 503 first", before)
	}
	// The readiness line follows the first healthy check within a poll.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(d.log.String(), "Clock attestation ready (max_age=30s)"); {
		if time.Now().After(deadline) {
			t.Errorf("startup line missing from the log:\n%s", d.log.String())
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	keys := fetchKeys(t, d)
	var (
		code int
		body []byte
	)
	if len(keys) != 1 || !keys[0].Development || !strings.HasPrefix(keys[0].ID, signer.DevKeyPrefix) {
		t.Fatalf("simulation keys %+v, want one development key", keys)
	}

	nonce := []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}
	v := signer.NewVerifier(keys)
	// Every attestation must hold the true time (the host clock) within its
	// published bound, allowing for when in the request it was taken. The
	// bound's size follows the jitter of the simulated PPS timestamps, which
	// under emulation (the future-dated guests) swings for seconds at a
	// time; so the test samples until one is under 1 ms, checking every
	// sample it takes, and only how long it may sample scales.
	var (
		att   signer.Attestation
		bound time.Duration
	)
	for deadline := time.Now().Add(testbin.Wait(10 * time.Second)); ; {
		hostBefore := time.Now()
		code, body = d.get(t, fmt.Sprintf("/attestation?nonce=%x", nonce))
		hostAfter := time.Now()
		if code != http.StatusOK {
			t.Fatalf("/attestation: %d %s", code, body)
		}
		att = signer.Attestation{}
		if err := json.Unmarshal(body, &att); err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(&att, time.Now(), nonce); err != nil {
			t.Fatalf("verify: %v\n%s", err, body)
		}
		if att.AuthorityID != "ntp.test.aunsorm" || att.Stratum != 1 || att.ClockState != "LOCKED" {
			t.Fatalf("authority %q stratum %d state %s, want ntp.test.aunsorm, 1, LOCKED", att.AuthorityID, att.Stratum, att.ClockState)
		}
		bound = att.ErrorBound()
		if bound <= 0 {
			t.Fatalf("error bound %v, want positive", bound)
		}
		if at := att.Time(); at.Before(hostBefore.Add(-bound)) || at.After(hostAfter.Add(bound)) {
			t.Fatalf("attested %v outside [%v, %v] ± %v", at, hostBefore, hostAfter, bound)
		}
		if bound <= time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("error bound %v, want under 1 ms when locked", bound)
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("tampered payload and signatures fail", func(t *testing.T) {
		var raw map[string]any
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{"timestamp_unix_ns", "error_bound_ns", "stratum", "signatures.ed25519", "signatures.ml_dsa_65"} {
			b := tamper(t, body, field)
			var bad signer.Attestation
			if err := json.Unmarshal(b, &bad); err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(&bad, time.Now(), nonce); err == nil {
				t.Errorf("tampered %s verified", field)
			}
		}
	})
	t.Run("older than 30 s is stale", func(t *testing.T) {
		var stale *signer.StaleAttestation
		if err := v.Verify(&att, att.Time().Add(31*time.Second), nonce); !errors.As(err, &stale) {
			t.Fatalf("err %v, want StaleAttestation", err)
		}
	})
	t.Run("timenodectl verify", func(t *testing.T) {
		testCtlVerify(t, d, body)
	})
	t.Run("without a client certificate only the gateway health check", func(t *testing.T) {
		base := "https://" + d.endpoints["https"]
		for _, tc := range []struct {
			path, mesh string
			want       int
		}{{"/attestation", "", http.StatusUnauthorized}, {"/keys", "", http.StatusUnauthorized},
			{"/health", "", http.StatusUnauthorized}, {"/health", "gateway", http.StatusOK}} {
			req, _ := http.NewRequest(http.MethodGet, base+tc.path, nil)
			if tc.mesh != "" {
				req.Header.Set("X-Aunsorm-Mesh", tc.mesh)
			}
			resp, err := d.anon.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("anonymous GET %s (mesh %q): %d, want %d", tc.path, tc.mesh, resp.StatusCode, tc.want)
			}
		}
	})
	t.Run("haproxy agent-check", func(t *testing.T) {
		c, err := net.Dial("tcp", d.endpoints["agent"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := io.ReadAll(c)
		if err != nil || !strings.HasPrefix(string(line), "up ") || !strings.HasSuffix(string(line), "%\n") {
			t.Fatalf("agent-check said %q (%v), want up N%%", line, err)
		}
	})
	t.Run("ntp", func(t *testing.T) {
		testNTP(t, d.endpoints["ntp"], bound)
	})
	t.Run("roughtime", func(t *testing.T) {
		testRoughtime(t, d)
	})
	t.Run("nts-ke", func(t *testing.T) {
		// The daemon's NTS-KE speaks TLS 1.3 with ALPN ntske/1 and the
		// node's certificate, without asking for a client certificate;
		// netsvc/nts runs the key exchange and chrony against it.
		anon := d.anon.Transport.(*http.Transport).TLSClientConfig.Clone()
		anon.NextProtos = []string{"ntske/1"}
		anon.ServerName = "localhost"
		c, err := tls.Dial("tcp", d.endpoints["nts-ke"], anon)
		if err != nil {
			t.Fatalf("NTS-KE handshake: %v", err)
		}
		defer c.Close()
		if st := c.ConnectionState(); st.NegotiatedProtocol != "ntske/1" || st.Version != tls.VersionTLS13 {
			t.Fatalf("negotiated %q, TLS %x; want ntske/1 over TLS 1.3", st.NegotiatedProtocol, st.Version)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get("http://" + d.endpoints["metrics"] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		m, _ := io.ReadAll(resp.Body)
		lintMetrics(t, m)
		for _, want := range []string{`timenode_clock_state{state="LOCKED"} 1`, "timenode_clock_error_bound_seconds",
			`timenode_http_requests_total{code="200",handler="GET /attestation"}`, `timenode_gnss_state{state="ok"} 1`,
			`timenode_pps_pulses_total{quality="simulated"}`, "mtls_handshake_success_ratio", `mtls_cert_days_remaining{cert="server"}`,
			// The simulated sky (hw/sim): 6 GPS used of 8, a 3D fix, antenna OK.
			`timenode_gnss_satellites{constellation="gps",state="used"} 6`, `timenode_gnss_satellites{constellation="galileo",state="in_view"} 5`,
			"timenode_gnss_fix_type 3", `timenode_gnss_antenna_status{status="ok"} 1`} {
			if !strings.Contains(string(m), want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
	t.Run("one version everywhere", func(t *testing.T) {
		daemonBin, ctlBin := buildBinaries(t)
		var versions []string
		for _, c := range [][]string{{daemonBin, "--version"}, {ctlBin, "version"}, {ctlBin, "--version"}} {
			out, err := exec.Command(c[0], c[1:]...).Output()
			if err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			_, v, err := version.Parse(string(out))
			if err != nil {
				t.Fatal(err)
			}
			versions = append(versions, v)
		}
		resp, err := http.Get("http://" + d.endpoints["metrics"] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		m, _ := io.ReadAll(resp.Body)
		metric := ""
		for _, line := range strings.Split(string(m), "\n") {
			if strings.HasPrefix(line, "timenode_build_info{") && strings.HasSuffix(line, "} 1") {
				if _, rest, ok := strings.Cut(line, `,version="`); ok {
					metric, _, _ = strings.Cut(rest, `"`)
				}
			}
		}
		versions = append(versions, metric)
		for _, v := range versions[1:] {
			if v != versions[0] || v == "" {
				t.Fatalf("versions %q: timenoded --version, timenodectl version, timenodectl --version and timenode_build_info must agree", versions)
			}
		}
	})
}

// tamper flips the lowest bit of a digit (of a number, or of a number
// carried as a string), or one byte of a base64 signature, in the named
// field of the JSON document.
func tamper(t *testing.T, doc []byte, field string) []byte {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	obj, key := m, field
	if i := strings.IndexByte(field, '.'); i > 0 {
		obj, key = m[field[:i]].(map[string]any), field[i+1:]
	}
	switch v := obj[key].(type) {
	case json.Number:
		s := []byte(v.String())
		s[len(s)-1] ^= 1
		obj[key] = json.Number(s)
	case string:
		s := []byte(v)
		if strings.Trim(v, "0123456789") == "" {
			// A number carried as a string (timestamp_unix_ns, format
			// version 2): flip its last digit's lowest bit.
			s[len(s)-1] ^= 1
			obj[key] = string(s)
			break
		}
		if s[10] == 'A' {
			s[10] = 'B'
		} else {
			s[10] = 'A'
		}
		obj[key] = string(s)
	default:
		t.Fatalf("field %s has type %T", field, v)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testCtlVerify(t *testing.T, d *simDaemon, body []byte) {
	_, ctl := buildBinaries(t)
	url := "https://" + d.endpoints["https"] + "/attestation"
	mtlsArgs := []string{"--cacert", d.endpoints["ca"], "--cert", d.endpoints["client_cert"], "--key", d.endpoints["client_key"]}
	out, err := exec.Command(ctl, append([]string{"attestation", "verify", url}, mtlsArgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("timenodectl verify %s: %v\n%s", url, err, out)
	}
	for _, want := range []string{"attestation verified (ed25519+ml-dsa-65)", "authority_id", "clock_state   LOCKED", "stratum       1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("timenodectl output lacks %q:\n%s", want, out)
		}
	}
	dir := t.TempDir()
	keysURL := "https://" + d.endpoints["https"] + "/keys"
	for _, tc := range []struct {
		name, field, want string
	}{
		{"payload", "error_bound_ns", "signature invalid: ed25519"},
		{"ml-dsa signature", "signatures.ml_dsa_65", "signature invalid: ml-dsa-65"},
	} {
		file := filepath.Join(dir, tc.name+".json")
		if err := os.WriteFile(file, tamper(t, body, tc.field), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(ctl, append([]string{"attestation", "verify", file, "--keys", keysURL}, mtlsArgs...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("tampered %s: err %v, want exit 1\n%s", tc.name, err, out)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("tampered %s: output %q does not name the failed check %q", tc.name, out, tc.want)
		}
	}
	// The untampered document saved to a file still verifies.
	file := filepath.Join(dir, "good.json")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ctl, append([]string{"attestation", "verify", file, "--keys", keysURL}, mtlsArgs...)...).CombinedOutput(); err != nil {
		t.Fatalf("untampered file: %v\n%s", err, out)
	}
	// Re-saved through jq (1.6 rounds numbers beyond 2^53), it still
	// verifies: the document is I-JSON.
	jq, err := exec.LookPath("jq")
	if err != nil {
		missingTool(t, "jq", "jq")
	}
	resaved, err := exec.Command(jq, ".", file).Output()
	if err != nil {
		t.Fatalf("jq: %v", err)
	}
	file = filepath.Join(dir, "resaved.json")
	if err := os.WriteFile(file, resaved, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ctl, append([]string{"attestation", "verify", file, "--keys", keysURL}, mtlsArgs...)...).CombinedOutput(); err != nil {
		t.Fatalf("file re-saved by jq: %v\n%s", err, out)
	}
}

// testNTP sends one NTPv4 client request to the daemon and checks the
// reply claims stratum 1, is not in alarm, and that its transmit time is
// within the bound of the host clock.
func testNTP(t *testing.T, addr string, bound time.Duration) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := make([]byte, 48)
	req[0] = 0<<6 | 4<<3 | 3 // LI 0, version 4, client
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	before := time.Now()
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 128)
	n, err := conn.Read(resp)
	after := time.Now()
	if err != nil || n < 48 {
		t.Fatalf("ntp reply: %d bytes, %v", n, err)
	}
	li, mode, stratum := resp[0]>>6, resp[0]&7, resp[1]
	if li == 3 || mode != 4 || stratum != 1 {
		t.Fatalf("ntp reply LI %d mode %d stratum %d, want LI != 3, mode 4, stratum 1", li, mode, stratum)
	}
	// The era comes from the local clock, as every NTP client takes it:
	// from 2036-02-07 the 32-bit seconds count from 0 again.
	tx := ntp.Timestamp(binary.BigEndian.Uint64(resp[40:48])).Time(before)
	if tx.Before(before.Add(-bound)) || tx.After(after.Add(bound)) {
		t.Fatalf("ntp transmit time %v outside [%v, %v] ± %v", tx, before, after, bound)
	}
	if refid := string(resp[12:15]); refid != "PPS" {
		t.Errorf("reference id %q, want PPS", refid)
	}
}

// lintMetrics runs promtool over the exposition: clean, except the names
// fixed by existing dashboards (SPEC.md), which keep their spelling.
func lintMetrics(t *testing.T, exposition []byte) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		missingTool(t, "promtool", "prometheus")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, _ := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		if strings.HasPrefix(name, "mtls_") || strings.HasPrefix(name, "ntp_attestation_") {
			continue // the seed's names, kept as dashboards use them
		}
		t.Errorf("promtool check metrics: %s", line)
	}
}

// testRoughtime sends Google-Roughtime requests to the daemon and checks
// the reply: signed midpoint within the radius of the host clock, a radius
// never below the bound the node published at the time, and the long-term
// key /health names. (netsvc/roughtime verifies signatures and Merkle
// paths, and Cloudflare's client against it.)
//
// The bound falls at each pulse the node takes and grows in between, so
// the radius is held against the bound read just before the request, and
// only when /health shows no new pulse between that read and one just
// after the reply: then the bound at signing was at least the one read
// before. A pulse in between (likely under TCG, where a query can take a
// second) makes the attempt inconclusive, and it is made again.
func testRoughtime(t *testing.T, d *simDaemon) {
	const attempts = 5
	for i := 1; i <= attempts; i++ {
		before, beforeAt := roughtimeHealth(t, d)
		rad := queryRoughtime(t, d)
		after, afterAt := roughtimeHealth(t, d)
		p0, ok0 := pulseAt(before, beforeAt)
		p1, ok1 := pulseAt(after, afterAt)
		if !ok0 || !ok1 || p1.Sub(p0).Abs() > 500*time.Millisecond {
			t.Logf("attempt %d: a pulse came between the reads (%v, %v), so the bound moved; again", i, p0, p1)
			continue
		}
		if bound := time.Duration(before.Clock.ErrorBoundNs); rad < bound {
			t.Errorf("RADI %v below the bound %v published just before the request", rad, bound)
		}
		return
	}
	t.Fatalf("no %d attempts without a pulse between the reads: the radius was never compared", attempts)
}

// roughtimeHealth reads /health and checks that it names the Roughtime
// service on its endpoint with a public key; it returns the document and
// when it was read.
func roughtimeHealth(t *testing.T, d *simDaemon) (netsvc.Health, time.Time) {
	t.Helper()
	_, body := d.get(t, "/health")
	at := time.Now()
	var h netsvc.Health
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	var svc *netsvc.HealthService
	for i := range h.Services {
		if h.Services[i].Name == "roughtime" {
			svc = &h.Services[i]
		}
	}
	if svc == nil || !svc.Serving || svc.Addr != d.endpoints["roughtime"] || svc.PublicKey == "" {
		t.Fatalf("/health services %+v, want roughtime serving on %s with its public key", h.Services, d.endpoints["roughtime"])
	}
	return h, at
}

// pulseAt is when, on the host's clock, the last pulse /health names came.
func pulseAt(h netsvc.Health, readAt time.Time) (time.Time, bool) {
	if h.Clock.LastPulseAgeMs == nil {
		return time.Time{}, false
	}
	return readAt.Add(-time.Duration(*h.Clock.LastPulseAgeMs) * time.Millisecond), true
}

// queryRoughtime sends one request and returns the reply's radius, after
// checking its size and that its midpoint is within it of the host clock.
func queryRoughtime(t *testing.T, d *simDaemon) time.Duration {
	t.Helper()
	nonce := make([]byte, 64)
	rand.Read(nonce)
	msg, err := roughtime.NewMessage(roughtime.Field{Tag: roughtime.TagNONC, Value: nonce}, roughtime.Field{Tag: roughtime.TagPAD, Value: nil})
	if err != nil {
		t.Fatal(err)
	}
	msg, _ = roughtime.NewMessage(roughtime.Field{Tag: roughtime.TagNONC, Value: nonce},
		roughtime.Field{Tag: roughtime.TagPAD, Value: make([]byte, roughtime.MinRequestSize-msg.Size())})
	req, err := msg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", d.endpoints["roughtime"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := time.Now()
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(testbin.Wait(5 * time.Second)))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	after := time.Now()
	if err != nil {
		t.Fatalf("no Roughtime reply: %v", err)
	}
	if n > len(req) {
		t.Errorf("reply of %d bytes to a %d-byte request", n, len(req))
	}
	reply, err := roughtime.ParseMessage(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	srepBytes, ok := reply.Get(roughtime.TagSREP)
	if !ok {
		t.Fatal("reply without SREP")
	}
	srep, err := roughtime.ParseMessage(srepBytes)
	if err != nil {
		t.Fatal(err)
	}
	midp, ok1 := srep.Get(roughtime.TagMIDP)
	radi, ok2 := srep.Get(roughtime.TagRADI)
	if !ok1 || !ok2 || len(midp) != 8 || len(radi) != 4 {
		t.Fatalf("SREP without a well-formed MIDP and RADI: %v", srep)
	}
	mid := time.UnixMicro(int64(binary.LittleEndian.Uint64(midp)))
	rad := time.Duration(binary.LittleEndian.Uint32(radi)) * time.Microsecond
	if mid.Before(before.Add(-rad)) || mid.After(after.Add(rad)) {
		t.Errorf("midpoint %v outside [%v, %v] ± %v", mid, before, after, rad)
	}
	return rad
}

// TestDenialCountReachesMetrics: what the shipped denial counter does on
// the appliance — timenodectl apparmor denials writing its textfile — is
// exported on the daemon's own /metrics with --textfile-dir, the way the
// unit runs it; a file that names one of the daemon's metrics is refused.
func TestDenialCountReachesMetrics(t *testing.T) {
	_, ctl := buildBinaries(t)
	dir := t.TempDir()
	out, err := exec.Command(ctl, "apparmor", "denials", "--textfile", filepath.Join(dir, "timenode_apparmor.prom"),
		"../../netsvc/apparmorlog/testdata/kern.log").CombinedOutput()
	if code := exitCode(err); code != 1 { // 1: denials found
		t.Fatalf("timenodectl apparmor denials: exit %d (%v)\n%s", code, err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "forged.prom"), []byte("timenode_clock_locked 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startSim(t, simOptions{args: []string{"--textfile-dir", dir}})
	for series, want := range map[string]float64{
		`mtls_app_armor_denials_total{class="file_read",profile="timenoded"}`:        2,
		`mtls_app_armor_denials_total{class="capability",profile="timenoded"}`:       1,
		`mtls_app_armor_denials_total{class="file_read",profile="timenode-refresh"}`: 0,
		`timenode_textfile_scrape_error{file="timenode_apparmor.prom"}`:              0,
		`timenode_textfile_scrape_error{file="forged.prom"}`:                         1,
	} {
		if got := d.metric(t, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// exitCode is a finished command's exit status (0 when err is nil).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestNTSCookieKeysKept: the daemon keeps the NTS cookie master keys in
// its state directory by default, owner-only, so a restart does not
// invalidate clients' cookies (netsvc/nts tests the restart itself).
func TestNTSCookieKeysKept(t *testing.T) {
	d := startSim(t, simOptions{})
	p := filepath.Join(d.endpoints["state_dir"], "nts-cookie-keys")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("no cookie key file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
	}
}
