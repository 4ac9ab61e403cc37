package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc"
	"github.com/aunsorm/timenode/timing"
)

// TestEndToEndKeepsStability: a daemon stopped while LOCKED leaves the
// oscillator stability it measured in its state directory, and the next
// one starts its discipline from it; a file that may not be used is
// named in the log and the node serves all the same.
func TestEndToEndKeepsStability(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	path := filepath.Join(state, stabilityFile)
	d := startSim(t, simOptions{stateDir: state})
	d.waitIntegrity(t, 60*time.Second, "clock LOCKED", func(h netsvc.Health) bool { return h.Clock.State == "LOCKED" })
	// The bound's fit needs two octaves backed (about 30 samples).
	time.Sleep(testbin.Wait(40 * time.Second))
	d.stop()
	// The stopping daemon leaves the clock at its frequency estimate, not
	// at its last output with that second's phase term (timing.Run).
	if want := `msg="stopping: the clock holds the servo's frequency estimate"`; !strings.Contains(d.log.String(), want) {
		t.Errorf("the daemon stopped while LOCKED does not say %q:\n%s", want, d.log.String())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after a stop while LOCKED: %v; want %s with mode 0600", err, path)
	}
	k, ok, err := timing.LoadKept(path, time.Now())
	if !ok || err != nil || !k.Stability().Measured() || k.Servo == nil {
		t.Fatalf("kept: ok %v, err %v, measured %v, servo memory %v", ok, err, k.Stability().Measured(), k.Servo != nil)
	}
	// The simulated oscillator is made anew at every start: its
	// frequency is kept in the servo memory but names no clock, so no
	// restart is offered it.
	if k.Servo.FreqVar <= 0 || k.ClockID != "" {
		t.Errorf("kept frequency variance %v, clock %q; want a frequency and no clock for --sim", k.Servo.FreqVar, k.ClockID)
	}

	d = startSim(t, simOptions{stateDir: state})
	if want := `msg="oscillator stability restored" path=` + path; !strings.Contains(d.log.String(), want) ||
		!strings.Contains(d.log.String(), "servo_memory=true") {
		t.Errorf("the restarted daemon does not say %q:\n%s", want, d.log.String())
	}
	if strings.Contains(d.log.String(), "kept frequency offered") {
		t.Errorf("a --sim restart was offered the last oscillator's frequency:\n%s", d.log.String())
	}
	// Stopped again soon after it locked, before its servo measured its
	// own noise: what it was given is kept, with its own terms added.
	d.waitIntegrity(t, 60*time.Second, "clock LOCKED after the restart", func(h netsvc.Health) bool { return h.Clock.State == "LOCKED" })
	d.stop()
	again, ok, err := timing.LoadKept(path, time.Now())
	if !ok || err != nil || again.Servo == nil || again.Servo.Weight < k.Servo.Weight || again.AllanTerms[0] < k.AllanTerms[0] {
		t.Fatalf("kept after a second, short run: ok %v, err %v, servo memory %v, 1 s terms %v (first run %v)",
			ok, err, again.Servo != nil, again.AllanTerms[0], k.AllanTerms[0])
	}

	if err := os.WriteFile(path, []byte(`{"version": 1, "saved_at": "2020-01-01T00:00:00Z"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d = startSim(t, simOptions{stateDir: state})
	if want := `msg="kept oscillator stability not used; measuring it afresh"`; !strings.Contains(d.log.String(), want) ||
		!strings.Contains(d.log.String(), path+": 0 sums and 0 counts") {
		t.Errorf("a file that may not be used: the log does not name it and why:\n%s", d.log.String())
	}
	d.waitIntegrity(t, 60*time.Second, "clock LOCKED after an unusable file", func(h netsvc.Health) bool { return h.Clock.State == "LOCKED" })
}
