package systemd

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// systemUnitDir is where Debian keeps the units ours depend on.
const systemUnitDir = "/usr/lib/systemd/system"

// execCommands returns the absolute program paths of every Exec*= line in
// the unit file at path, with systemd's prefix characters removed.
func execCommands(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var progs []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(s.Text()), "=")
		if !ok || !strings.HasPrefix(key, "Exec") {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		prog := strings.TrimLeft(fields[0], "-@:+!")
		if strings.HasPrefix(prog, "/") {
			progs = append(progs, prog)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return progs
}

// copyFile copies src to dst with mode.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// verifyRoot builds a throw-away root for `systemd-analyze verify --root`:
// Debian's system units (targets and the like), the units under test, and
// an executable placeholder for each program they run. verify only checks
// that ExecStart= programs exist and are executable, and our binaries are
// not installed on the test host; the placeholders keep the host untouched.
func verifyRoot(t *testing.T, units []string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, systemUnitDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(systemUnitDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			copyFile(t, filepath.Join(systemUnitDir, e.Name()), filepath.Join(dir, e.Name()), 0o644)
		}
	}
	for _, u := range units {
		copyFile(t, u, filepath.Join(dir, filepath.Base(u)), 0o644)
		for _, prog := range execCommands(t, u) {
			p := filepath.Join(root, prog)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// verifyFindings runs `systemd-analyze verify --man=no` on the units inside
// a fresh root and returns every line it printed on stderr, plus a line for
// a non-zero exit. verify exits 0 on unknown keys and bad values, so stderr
// is the verdict.
func verifyFindings(t *testing.T, units ...string) []string {
	t.Helper()
	root := verifyRoot(t, units)
	args := []string{"verify", "--man=no", "--root=" + root}
	for _, u := range units {
		args = append(args, filepath.Base(u))
	}
	out, errOut, code := analyze(t, args...)
	var findings []string
	for _, l := range strings.Split(errOut+out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			findings = append(findings, l)
		}
	}
	if code != 0 {
		findings = append(findings, "exit status "+strconv.Itoa(code))
	}
	return findings
}

// TestVerifyClean requires `systemd-analyze verify` to have nothing to say
// about each of our units; the broken unit is the control that proves a
// warning on stderr is caught even though verify exits 0.
func TestVerifyClean(t *testing.T) {
	testbin.NeedTool(t, "systemd-analyze", "systemd")
	tests := []struct {
		name         string
		unit         string
		wantFindings bool
	}{
		{name: "daemon", unit: "timenoded.service"},
		{name: "firstboot", unit: "timenode-firstboot.service"},
		{name: "refresh sidecar", unit: "timenode-refresh.service"},
		{name: "apparmor denial counter", unit: "timenode-apparmor-denials.service"},
		{name: "apparmor denial timer", unit: "timenode-apparmor-denials.timer"},
		{name: "ssh host key generation", unit: "timenode-sshd-keygen.service"},
		{name: "PPS module loading", unit: "timenode-pps-modules.service"},
		{name: "update gate", unit: "timenode-update-gate.service"},
		{name: "factory reset", unit: "timenode-factory-reset.service"},
		{name: "control: broken unit", unit: "testdata/broken.service", wantFindings: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := verifyFindings(t, tt.unit)
			if (len(got) > 0) != tt.wantFindings {
				t.Errorf("verify %s: findings %q, want findings = %v", tt.unit, got, tt.wantFindings)
			}
		})
	}
	t.Run("all together", func(t *testing.T) {
		if got := verifyFindings(t, ourUnits...); len(got) > 0 {
			t.Errorf("verify %v: %q", ourUnits, got)
		}
	})
}

// TestTimeSyncTargetWaitsForLock: time-sync.target is held back by
// systemd-time-wait-sync (the kernel's STA_UNSYNC, which timenoded clears
// only while it serves), with a bounded wait counted from timenoded's
// start; the drop-in verifies clean on Debian's unit.
func TestTimeSyncTargetWaitsForLock(t *testing.T) {
	const dropIn = "systemd-time-wait-sync.service.d/timenode.conf"
	b, err := os.ReadFile(dropIn)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	if !regexp.MustCompile(`(?m)^After=timenoded\.service$`).MatchString(conf) {
		t.Error("the wait is not ordered after timenoded.service")
	}
	m := regexp.MustCompile(`(?m)^TimeoutStartSec=(\d+)$`).FindStringSubmatch(conf)
	if m == nil {
		t.Fatal("no TimeoutStartSec= in seconds: the wait must be bounded")
	}
	if s, _ := strconv.Atoi(m[1]); s < 30 || s > 600 {
		t.Errorf("TimeoutStartSec=%d, want between 30 s and 10 min", s)
	}
	// timenoded itself only orders before the target: it must not claim it.
	unit, err := os.ReadFile("timenoded.service")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^(WantedBy|RequiredBy)=.*time-sync\.target`).Match(unit) {
		t.Error("timenoded.service pulls time-sync.target in as if started meant synchronized")
	}

	testbin.NeedTool(t, "systemd-analyze", "systemd")
	const waitUnit = systemUnitDir + "/systemd-time-wait-sync.service"
	if _, err := os.Stat(waitUnit); err != nil {
		t.Fatalf("Debian's %s: %v", waitUnit, err)
	}
	root := verifyRoot(t, []string{"timenoded.service"})
	if err := os.MkdirAll(filepath.Join(root, systemUnitDir, filepath.Dir(dropIn)), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, dropIn, filepath.Join(root, systemUnitDir, dropIn), 0o644)
	if err := os.MkdirAll(filepath.Join(root, "lib/systemd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "lib/systemd/systemd-time-wait-sync"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := analyze(t, "verify", "--man=no", "--root="+root, "systemd-time-wait-sync.service", "timenoded.service")
	if code != 0 || strings.TrimSpace(errOut+out) != "" {
		t.Errorf("verify with the drop-in: exit %d\n%s%s", code, out, errOut)
	}
}
