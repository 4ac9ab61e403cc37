package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// TestStatusAgainstSim runs `timenodectl status` against timenoded --sim:
// LOCKED with the simulated sky (6 GPS and 4 Galileo used, a 3D fix, the
// antenna OK) and served rates from its metrics; then the PPS is cut, and
// the status says HOLDOVER with a reason, when it began and how old the
// last pulse is, while the node still serves.
func TestStatusAgainstSim(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	daemon, err := testbin.Build(dir, "timenoded", "../timenoded")
	if errors.Is(err, testbin.ErrNoToolchain) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	eps, _ := startDaemon(t, daemon, state, "127.0.0.1:0")
	args := []string{"status", "https://" + eps["https"], "--cacert", filepath.Join(state, "dev-ca.pem"),
		"--cert", filepath.Join(state, "dev-client.crt"), "--key", filepath.Join(state, "dev-client.key"),
		"--metrics", "http://" + eps["metrics"] + "/metrics", "--rate-interval", "300ms"}
	report := func() (int, statusReport, string) {
		t.Helper()
		code, out, errOut := run(append(args, "--json")...)
		var rep statusReport
		if code == 0 || code == 1 {
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("exit %d: %v\n%s%s", code, err, out, errOut)
			}
		}
		return code, rep, errOut
	}
	waitState := func(want string, within time.Duration) statusReport {
		t.Helper()
		deadline := time.Now().Add(testbin.Wait(within))
		for {
			code, rep, errOut := report()
			if rep.Health.Clock.State == want && rep.Health.Receiver != nil && rep.Health.Receiver.FixType == "3d" {
				return rep
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within %v: exit %d %+v %s", want, within, code, rep.Health.Clock, errOut)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	rep := waitState("LOCKED", 60*time.Second)
	rx := rep.Health.Receiver
	used := map[string]int{}
	for _, c := range rx.Constellations {
		used[c.Name] = c.Used
	}
	if used["gps"] != 6 || used["galileo"] != 4 || rx.Antenna != "ok" || rx.PDOP == nil || *rx.PDOP != 1.6 {
		t.Errorf("receiver %+v, want the simulated sky", rx)
	}
	if rep.Served == nil || rep.CertDaysLeft["server"] <= 0 || rep.HTTPStatus != http.StatusOK {
		t.Errorf("served %+v certs %v status %d, want rates and the server certificate", rep.Served, rep.CertDaysLeft, rep.HTTPStatus)
	}

	code, out, errOut := run(args...)
	for _, want := range []string{"State           : LOCKED", "Reason          : -", "Holdover since  : -", "Antenna         : ok", "gps", "galileo"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q (exit %d, %s):\n%s", want, code, errOut, out)
		}
	}

	resp, err := http.Post("http://"+eps["http"]+"/sim/pps?on=false", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rep = waitState("HOLDOVER", 15*time.Second)
	time.Sleep(2 * time.Second)
	code, rep, _ = report()
	c := rep.Health.Clock
	since, err := time.Parse(time.RFC3339Nano, c.HoldoverSince)
	if err != nil || time.Since(since) < 2*time.Second || time.Since(since) > time.Minute {
		t.Errorf("holdover_since %q (%v), want a time a few seconds ago", c.HoldoverSince, err)
	}
	if code != 0 || c.State != "HOLDOVER" || c.Reason == "" || c.LastPulseAgeMs == nil || *c.LastPulseAgeMs < 4000 ||
		c.LastFixAgeMs == nil || *c.LastFixAgeMs > 2000 {
		t.Errorf("exit %d clock %+v, want a serving HOLDOVER with a reason, a pulse over 4 s old and a fresh fix", code, c)
	}
}
