package systemd

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// ourUnits are the unit files this package ships.
var ourUnits = []string{
	"timenoded.service",
	"timenode-firstboot.service",
	"timenode-refresh.service",
	"timenode-apparmor-denials.service",
	"timenode-apparmor-denials.timer",
	"timenode-sshd-keygen.service",
	"timenode-pps-modules.service",
}

// chronyUnit is Debian's unit for the daemon a customer would otherwise run.
const chronyUnit = "/usr/lib/systemd/system/chrony.service"

// analyze runs systemd-analyze with args and returns stdout, stderr and the
// exit status (-1 when it could not run at all).
func analyze(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command("systemd-analyze", args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "LC_ALL=C.UTF-8")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return o.String(), e.String(), 0
	case errors.As(err, &exit):
		return o.String(), e.String(), exit.ExitCode()
	default:
		t.Fatalf("systemd-analyze %s: %v", strings.Join(args, " "), err)
		return "", "", -1
	}
}

var overallRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+\.[0-9])`)

// exposure returns the overall exposure score (0 best, 10 worst) that
// `systemd-analyze security --offline=true` gives unit. The JSON output has
// no overall figure, so it parses the text report and then cross-checks the
// number against systemd's own --threshold verdict (a 0-100 scale).
func exposure(t *testing.T, unit string) float64 {
	t.Helper()
	out, errOut, code := analyze(t, "security", "--offline=true", "--no-pager", unit)
	if code != 0 {
		t.Fatalf("security %s: exit %d: %s", unit, code, errOut)
	}
	m := overallRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("security %s: no overall score in:\n%s", unit, out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("security %s: score %q: %v", unit, m[1], err)
	}
	tenths := int(math.Round(score * 10))
	if _, _, c := analyze(t, "security", "--offline=true", "--no-pager",
		"--threshold="+strconv.Itoa(tenths), unit); c != 0 {
		t.Fatalf("security %s: parsed %.1f but --threshold=%d exits %d", unit, score, tenths, c)
	}
	if tenths > 0 {
		if _, _, c := analyze(t, "security", "--offline=true", "--no-pager",
			"--threshold="+strconv.Itoa(tenths-1), unit); c == 0 {
			t.Fatalf("security %s: parsed %.1f but --threshold=%d passes", unit, score, tenths-1)
		}
	}
	return score
}

// check is one line of `systemd-analyze security --json=short`.
type check struct {
	Set       bool    `json:"set"`
	Name      string  `json:"name"`
	JSONField string  `json:"json_field"`
	Exposure  *string `json:"exposure"`
}

// checks returns the per-setting verdicts for unit keyed by json_field.
func checks(t *testing.T, unit string) map[string]check {
	t.Helper()
	out, errOut, code := analyze(t, "security", "--offline=true", "--no-pager", "--json=short", unit)
	if code != 0 {
		t.Fatalf("security --json %s: exit %d: %s", unit, code, errOut)
	}
	var list []check
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("security --json %s: %v", unit, err)
	}
	m := make(map[string]check, len(list))
	for _, c := range list {
		m[c.JSONField] = c
	}
	return m
}

// TestExposureBelowChrony scores our units and Debian's chrony.service in the
// same run and requires ours to be strictly lower (better). The bare unit is
// the control: an unhardened service must not pass.
func TestExposureBelowChrony(t *testing.T) {
	testbin.NeedTool(t, "systemd-analyze", "systemd")
	testbin.NeedTool(t, chronyUnit, "chrony")
	chrony := exposure(t, chronyUnit)
	t.Logf("exposure %-28s %.1f", "chrony.service (Debian)", chrony)
	tests := []struct {
		name      string
		unit      string
		wantBelow bool
	}{
		{name: "daemon", unit: "timenoded.service", wantBelow: true},
		{name: "firstboot", unit: "timenode-firstboot.service", wantBelow: true},
		{name: "refresh sidecar", unit: "timenode-refresh.service", wantBelow: true},
		{name: "apparmor denial counter", unit: "timenode-apparmor-denials.service", wantBelow: true},
		{name: "ssh host key generation", unit: "timenode-sshd-keygen.service", wantBelow: true},
		{name: "PPS module loading", unit: "timenode-pps-modules.service", wantBelow: true},
		{name: "provisioning medium", unit: "timenode-media@.service", wantBelow: true},
		{name: "update gate", unit: "timenode-update-gate.service", wantBelow: true},
		{name: "control: bare unit", unit: "testdata/bare.service", wantBelow: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := exposure(t, tt.unit)
			t.Logf("exposure %-28s %.1f (chrony %.1f)", filepath.Base(tt.unit), got, chrony)
			if below := got < chrony; below != tt.wantBelow {
				t.Errorf("%s scores %.1f against chrony's %.1f: below = %v, want %v",
					tt.unit, got, chrony, below, tt.wantBelow)
				if tt.wantBelow {
					for _, c := range checks(t, tt.unit) {
						if c.Exposure != nil {
							t.Logf("  exposed: %s (%s)", c.Name, *c.Exposure)
						}
					}
				}
			}
		})
	}
}

// clockBlockers lists the settings, as systemd reads them, that would stop a
// unit from steering CLOCK_REALTIME with adjtimex. In the JSON, "set" means
// the hardening is applied, e.g. SystemCallFilter_clock set = @clock denied.
func clockBlockers(c map[string]check) []string {
	var blocked []string
	for _, f := range []string{"SystemCallFilter_clock", "ProtectClock", "CapabilityBoundingSet_CAP_SYS_TIME"} {
		v, ok := c[f]
		if !ok {
			blocked = append(blocked, f+" (missing from report)")
			continue
		}
		if v.Set {
			blocked = append(blocked, v.Name)
		}
	}
	return blocked
}

// TestClockStaysReachable proves, through systemd's own reading of the unit,
// that hardening left the daemon able to discipline the clock: @clock is not
// filtered (the ~@privileged trap), ProtectClock is off and CAP_SYS_TIME is in
// the bounding set. The trap unit is the control.
func TestClockStaysReachable(t *testing.T) {
	testbin.NeedTool(t, "systemd-analyze", "systemd")
	tests := []struct {
		name        string
		unit        string
		wantBlocked bool
	}{
		{name: "daemon", unit: "timenoded.service", wantBlocked: false},
		{name: "control: ~@privileged trap", unit: "testdata/privileged-trap.service", wantBlocked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clockBlockers(checks(t, tt.unit))
			if (len(got) > 0) != tt.wantBlocked {
				t.Errorf("%s: clock blocked by %q, want blocked = %v", tt.unit, got, tt.wantBlocked)
			}
		})
	}
}

// debianSSHUnit is the unit of Debian's openssh-server, which the image
// runs with systemd/ssh.service.d/timenode.conf.
const debianSSHUnit = "/usr/lib/systemd/system/ssh.service"

// TestSSHDropInLowersExposure scores Debian's ssh.service alone and with
// our drop-in, in a throwaway root as the image lays them out. sshd must
// start login sessions as any user, so it cannot score like the daemon;
// the drop-in must still take a clear bite out of the stock exposure.
func TestSSHDropInLowersExposure(t *testing.T) {
	testbin.NeedTool(t, "systemd-analyze", "systemd")
	testbin.NeedTool(t, debianSSHUnit, "openssh-server")
	stock, err := os.ReadFile(debianSSHUnit)
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err := os.ReadFile("ssh.service.d/timenode.conf")
	if err != nil {
		t.Fatal(err)
	}
	score := func(withDropIn bool) float64 {
		root := t.TempDir()
		dir := filepath.Join(root, "usr/lib/systemd/system")
		if err := os.MkdirAll(filepath.Join(dir, "ssh.service.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ssh.service"), stock, 0o644); err != nil {
			t.Fatal(err)
		}
		if withDropIn {
			if err := os.WriteFile(filepath.Join(dir, "ssh.service.d/timenode.conf"), dropIn, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out, errOut, code := analyze(t, "security", "--offline=true", "--no-pager", "--root="+root, "ssh.service")
		if code != 0 {
			t.Fatalf("security ssh.service: exit %d: %s", code, errOut)
		}
		m := overallRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("security ssh.service: no overall score in:\n%s", out)
		}
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	before, after := score(false), score(true)
	t.Logf("exposure ssh.service: Debian %.1f, with timenode.conf %.1f", before, after)
	if after > before-2 {
		t.Errorf("ssh.service with the drop-in scores %.1f against %.1f without: want at least 2 points lower", after, before)
	}
}

// TestFirstBootRerunsUntilItsLastStep: the first-boot unit is skipped only
// once the file of its last step exists, so a boot that died in any
// earlier step runs it again; and every key generation in it keeps a pair
// a previous boot made instead of failing on it.
func TestFirstBootRerunsUntilItsLastStep(t *testing.T) {
	b, err := os.ReadFile("timenode-firstboot.service")
	if err != nil {
		t.Fatal(err)
	}
	var cond, lastOut string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "ConditionPathExists=!"); ok {
			cond = v
		}
		if !strings.HasPrefix(line, "ExecStart=") {
			continue
		}
		if (strings.Contains(line, "keys generate") || strings.Contains(line, "keys roughtime")) && !strings.Contains(line, "--if-missing") {
			t.Errorf("%q fails on a second run after a later step failed: add --if-missing", line)
		}
		f := strings.Fields(line)
		for i := range f[:len(f)-1] {
			if f[i] == "--out" {
				lastOut = f[i+1]
			}
		}
	}
	if cond == "" || cond != lastOut {
		t.Fatalf("ConditionPathExists=!%s, want the last step's output %s", cond, lastOut)
	}
}
