package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc/monitoring"
	"github.com/aunsorm/timenode/signer"
)

// startDaemon runs `timenoded --sim` with state dir and returns its
// endpoints and a stop function.
func startDaemon(t *testing.T, daemon, state, https string) (map[string]string, func()) {
	t.Helper()
	os.Remove(filepath.Join(state, "endpoints.json"))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, daemon, "--sim", "--state-dir", state,
		"--https", https, "--metrics", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--ntp", "127.0.0.1:0")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := sync.OnceFunc(func() { cancel(); _ = cmd.Wait() })
	t.Cleanup(stop)
	var eps map[string]string
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(state, "endpoints.json"))
		if err == nil && json.Unmarshal(b, &eps) == nil {
			return eps, stop
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon wrote no endpoints.json")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// health fetches the sidecar's /health.
func health(addr string) (status string, refresh bool, code int) {
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		return "", false, 0
	}
	defer resp.Body.Close()
	var h struct {
		Clock struct {
			Status         string `json:"status"`
			RefreshEnabled bool   `json:"refreshEnabled"`
		} `json:"clock"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	return h.Clock.Status, h.Clock.RefreshEnabled, resp.StatusCode
}

func waitHealth(t *testing.T, addr string, wantOK bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		st, en, code := health(addr)
		if wantOK && st == "ok" && en && code == 200 {
			return time.Since(start)
		}
		if !wantOK && code == http.StatusServiceUnavailable && st != "ok" {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("sidecar health ok=%t not reached within %v", wantOK, within)
	return 0
}

// TestRefreshSidecarAgainstSim: healthy, daemon stopped → ClockUnavailable
// and health not ok within one interval + max age, restarted → healthy.
func TestRefreshSidecarAgainstSim(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	daemon, err := testbin.Build(dir, "timenoded", "../timenoded")
	var ctl string
	if err == nil {
		ctl, err = testbin.Build(dir, "timenodectl", ".")
	}
	if errors.Is(err, testbin.ErrNoToolchain) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	eps, stop := startDaemon(t, daemon, state, "127.0.0.1:0")

	const interval, maxAge = 1 * time.Second, 2 * time.Second
	sidecar := exec.Command(ctl, "refresh", "--listen", "127.0.0.1:0", "--cacert", filepath.Join(state, "dev-ca.pem"),
		"--cert", filepath.Join(state, "dev-client.crt"), "--key", filepath.Join(state, "dev-client.key"))
	sidecar.Env = append(os.Environ(),
		"AUNSORM_CLOCK_REFRESH_URL=https://"+eps["https"]+"/attestation",
		"AUNSORM_CLOCK_REFRESH_INTERVAL_SECS=1", "AUNSORM_CLOCK_MAX_AGE_SECS=2", "AUNSORM_CALIBRATION_FINGERPRINT=")
	pr, pw := io.Pipe()
	sidecar.Stderr = pw
	if err := sidecar.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sidecar.Process.Signal(os.Interrupt); sidecar.Wait(); pw.Close() })
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	var addr string
	for addr == "" {
		select {
		case l := <-lines:
			if i := strings.Index(l, "addr="); i >= 0 && strings.Contains(l, "listening") {
				addr = strings.Fields(l[i+5:])[0]
			}
		case <-time.After(10 * time.Second):
			t.Fatal("sidecar did not start")
		}
	}
	// The sim clock needs a few seconds to lock before it serves.
	waitHealth(t, addr, true, 45*time.Second)
	checkPinHint(t, eps["https"], state)
	validated := false
	for !validated {
		select {
		case l := <-lines:
			validated = strings.Contains(l, "Clock attestation validated")
		case <-time.After(5 * time.Second):
			t.Fatal("no 'Clock attestation validated' log line")
		}
	}
	metrics := get(t, "http://"+addr+"/metrics")
	for _, m := range []string{"ntp_attestation_round_trip_ms", "ntp_attestation_age_ms", "ntp_attestation_signature_valid 1", "ntp_attestation_stratum 1"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
	// Every sidecar metric the alert rules and the dashboard use must be
	// exported by the live sidecar.
	list, err := os.ReadFile("../../netsvc/monitoring/metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	want, err := monitoring.ParseMetricsList(string(list))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range want {
		if m.Source == monitoring.Sidecar && !m.Pending && !strings.Contains(metrics, "\n"+m.Name+" ") && !strings.Contains(metrics, "\n"+m.Name+"{") {
			t.Errorf("the sidecar does not export %s, which monitoring references", m.Name)
		}
	}

	stop()
	took := waitHealth(t, addr, false, interval+maxAge+2*time.Second)
	t.Logf("health went unavailable %v after the daemon stopped", took)
	if body := get(t, "http://"+addr+"/health"); !strings.Contains(body, "ClockUnavailable") {
		t.Errorf("health after stop does not say ClockUnavailable: %s", body)
	}

	startDaemon(t, daemon, state, eps["https"]) // same address: the sidecar's URL
	// Same state dir: the sim rewrites dev-ca.pem; the sidecar re-reads it
	// on reconnect. The new daemon needs to lock again first.
	deadline := time.Now().Add(45 * time.Second)
	for {
		if st, en, code := health(addr); st == "ok" && en && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			for len(lines) > 0 {
				t.Log(<-lines)
			}
			t.Fatal("sidecar not healthy again within 45 s of the restart")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprint(string(b))
}

// checkPinHint: an operator who pins the SHA-256 of a PEM file (what
// sha256sum prints) instead of the certificate's fingerprint is told so,
// with the command that gives the right value; the verification still
// fails.
func checkPinHint(t *testing.T, https, state string) {
	t.Helper()
	ca := filepath.Join(state, "dev-ca.pem")
	b, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	code, out, errOut := run("attestation", "verify", "https://"+https+"/attestation", "--cacert", ca,
		"--cert", filepath.Join(state, "dev-client.crt"), "--key", filepath.Join(state, "dev-client.key"),
		"--attestation-ca", ca, "--pin", hex.EncodeToString(sum[:]))
	if code != 1 || strings.Contains(out, "verified") {
		t.Fatalf("a pin of a file's SHA-256: exit %d, stdout %q; want a failure", code, out)
	}
	for _, w := range []string{"FAILED", "hint: --pin " + hex.EncodeToString(sum[:]) + " is the SHA-256 of the --attestation-ca file", "timenodectl ca fingerprint"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
}

// TestRefreshCredentialsDirectory: flags left empty are filled from
// $CREDENTIALS_DIRECTORY (systemd's LoadCredential=, a container's
// mounted secret); a flag given wins; a file that is not there is not
// invented.
func TestRefreshCredentialsDirectory(t *testing.T) {
	dir := t.TempDir()
	caPEM := pemFileForTest(t)
	for _, f := range []string{"refresh-client.crt", "refresh-client.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "refresh-attestation-ca.pem"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CREDENTIALS_DIRECTORY": dir, "AUNSORM_CLOCK_REFRESH_URL": "https://node.example:5443/attestation"}
	cfg, err := refreshConfig(refreshOptions{key: "/given.key"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSCertFile != filepath.Join(dir, "refresh-client.crt") || cfg.TLSKeyFile != "/given.key" || cfg.TLSCAFile != "" || cfg.Roots == nil {
		t.Errorf("cert %q key %q ca %q roots %v: want the directory's cert and attestation CA, the flag's key, no CA file", cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile, cfg.Roots != nil)
	}
	delete(env, "AUNSORM_CLOCK_REFRESH_URL")
	if _, err := refreshConfig(refreshOptions{}, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "AUNSORM_CLOCK_REFRESH_URL") {
		t.Errorf("no URL: %v, want an error naming AUNSORM_CLOCK_REFRESH_URL", err)
	}
}

// pemFileForTest is a CA certificate in PEM, for a file the sidecar reads.
func pemFileForTest(t *testing.T) []byte {
	t.Helper()
	ca, err := signer.NewCA("refresh test CA", true, provT0, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return signer.EncodeCerts(ca.Cert.Raw)
}
