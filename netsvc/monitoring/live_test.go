package monitoring

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// TestLiveDaemonMetrics builds timenoded, starts it in simulation on
// loopback ports and checks that every daemon metric on the allow-list
// is on its live /metrics. Pending metrics are reported; one that
// appears while still marked pending fails the test so the mark goes.
func TestLiveDaemonMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs timenoded")
	}
	bin, err := testbin.Build(t.TempDir(), "timenoded", "github.com/aunsorm/timenode/cmd/timenoded")
	if errors.Is(err, testbin.ErrNoToolchain) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	// One simulated witness, so that the witness metrics are exported.
	cmd := exec.CommandContext(ctx, bin, "--sim", "--state-dir", state, "--sim-witnesses", "1",
		"--https", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--ntp", "127.0.0.1:0")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	}()
	var eps map[string]string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(filepath.Join(state, "endpoints.json"))
		if err == nil && json.Unmarshal(b, &eps) == nil && eps["metrics"] != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no endpoints.json with a metrics address after 30 s")
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	// Labelled counters appear on /metrics only once counted: make one
	// request on the plain listener so timenode_http_requests_total exists.
	if eps["http"] != "" {
		if r, err := client.Get("http://" + eps["http"] + "/health"); err == nil {
			r.Body.Close()
		}
	}
	resp, err := client.Get("http://" + eps["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	live := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		// "# TYPE name kind" names every family, even one with no samples yet.
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			live[f[2]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var pending []string
	for _, m := range listed(t) {
		if m.Source != Daemon {
			continue
		}
		switch {
		case !m.Pending && !live[m.Name]:
			t.Errorf("%s is on the allow-list as a daemon metric but not on the live /metrics", m.Name)
		case m.Pending && live[m.Name]:
			t.Errorf("%s is exported now: drop its pending mark in metrics.txt", m.Name)
		case m.Pending:
			pending = append(pending, m.Name)
		}
	}
	if len(pending) > 0 {
		t.Logf("pending daemon metrics, not exported yet: %s", strings.Join(pending, ", "))
	}
}
