package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/image/slots"
)

// flashedESP is the ESP image/build.sh writes: slot a committed.
func flashedESP(t *testing.T) string {
	t.Helper()
	esp := t.TempDir()
	os.MkdirAll(filepath.Join(esp, slots.EntriesDir), 0o755)
	body := entryFor("a", "timenode 1.0", "aaaa", "ro console=ttyS0")
	body = bytes.Replace(body, []byte("version 0"), []byte("version 1"), 1)
	if err := os.WriteFile(filepath.Join(esp, slots.EntriesDir, "timenode-a.conf"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	return esp
}

func TestBootloaderBackendSpeaksRAUC(t *testing.T) {
	esp := flashedESP(t)
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := dispatch(append([]string{"update", "bootloader", "--esp", esp}, args...), &out, &errb)
		return out.String(), errb.String(), code
	}
	if out, _, code := run("get-primary"); code != 0 || out != "a\n" {
		t.Fatalf("get-primary = %q, %d", out, code)
	}
	if out, _, code := run("get-state", "b"); code != 0 || out != "bad\n" {
		t.Fatalf("get-state b (no entry) = %q, %d", out, code)
	}
	// RAUC's install: mark the target bad, the hook's entry, set-primary.
	if _, e, code := run("set-state", "b", "bad"); code != 0 {
		t.Fatalf("set-state b bad: %d %s", code, e)
	}
	if err := (slots.ESP{Dir: esp}).Install("b", entryFor("b", "timenode 2.0", "bbbb", "ro")); err != nil {
		t.Fatal(err)
	}
	if _, e, code := run("set-primary", "b"); code != 0 {
		t.Fatalf("set-primary b: %d %s", code, e)
	}
	if out, _, _ := run("get-primary"); out != "b\n" {
		t.Fatalf("get-primary after set-primary b = %q", out)
	}
	if _, err := os.Stat(filepath.Join(esp, slots.EntriesDir, fmt.Sprintf("timenode-b+%d.conf", slots.DefaultTries))); err != nil {
		t.Fatalf("the new primary has no boot counter: %v", err)
	}
	if _, e, code := run("set-state", "b", "good"); code != 0 {
		t.Fatalf("set-state b good: %d %s", code, e)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"reboot"}, "unknown operation"},
		{[]string{"get-state"}, "takes 1 argument"},
		{[]string{"set-state", "b", "fine"}, `state "fine"`},
		{[]string{"set-primary", "../x"}, "not a slot name"},
	}
	for _, tc := range tests {
		if _, e, code := run(tc.args...); code != 2 || !strings.Contains(e, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, e, tc.want)
		}
	}
}

func TestInstallEntryCopiesTheNewSlotsKernel(t *testing.T) {
	esp := flashedESP(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, bootDir), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	for f, b := range map[string]string{"vmlinuz": "kernel v2", "initrd.img": "initrd v2", "cmdline": "ro rootfstype=ext4 apparmor=1\n"} {
		os.WriteFile(filepath.Join(root, bootDir, f), []byte(b), 0o644)
	}
	os.WriteFile(filepath.Join(root, "usr/lib/os-release"), []byte("ID=debian\nIMAGE_VERSION=0.3.0+abc\n"), 0o644)
	// udev's by-partuuid: links to the partitions.
	dev := t.TempDir()
	os.WriteFile(filepath.Join(dev, "vda3"), nil, 0o644)
	os.WriteFile(filepath.Join(dev, "vda2"), nil, 0o644)
	byUUID := t.TempDir()
	os.Symlink(filepath.Join(dev, "vda2"), filepath.Join(byUUID, "1111-aaaa"))
	os.Symlink(filepath.Join(dev, "vda3"), filepath.Join(byUUID, "2222-bbbb"))
	// RAUC names the slot by its by-partlabel link.
	os.Symlink(filepath.Join(dev, "vda3"), filepath.Join(dev, "tn-root-b"))

	// The bundle's signed verity descriptor.
	bundle := t.TempDir()
	os.WriteFile(filepath.Join(bundle, "verity.env"), []byte("ROOT_HASH=ab12\n"), 0o644)
	var out, errb bytes.Buffer
	// A bundle without the descriptor's signature changes nothing.
	code := dispatch([]string{"update", "install-entry", "--esp", esp, "--slot", "b", "--root", root,
		"--device", filepath.Join(dev, "tn-root-b"), "--by-partuuid", byUUID, "--verity", bundle}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "no dm-verity descriptor verity.env.p7s") {
		t.Fatalf("install-entry without the descriptor's signature: %d %q", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(esp, "timenode/b")); !os.IsNotExist(err) {
		t.Fatalf("a refused install-entry touched the ESP: %v", err)
	}
	os.WriteFile(filepath.Join(bundle, "verity.env.p7s"), []byte("signature"), 0o644)
	errb.Reset()
	code = dispatch([]string{"update", "install-entry", "--esp", esp, "--slot", "b", "--root", root,
		"--device", filepath.Join(dev, "tn-root-b"), "--by-partuuid", byUUID, "--verity", bundle}, &out, &errb)
	if code != 0 {
		t.Fatalf("install-entry: %d %s", code, errb.String())
	}
	for f, want := range map[string]string{"vmlinuz": "kernel v2", "initrd.img": "initrd v2", "verity.env": "ROOT_HASH=ab12\n", "verity.env.p7s": "signature"} {
		if b, _ := os.ReadFile(filepath.Join(esp, "timenode/b", f)); string(b) != want {
			t.Errorf("ESP timenode/b/%s = %q, want %q", f, b, want)
		}
	}
	ent, err := slots.ESP{Dir: esp}.Find("b")
	if err != nil {
		t.Fatal(err)
	}
	if !ent.Bad() {
		t.Errorf("a freshly written slot's entry is bootable before set-primary: %s", ent.Name)
	}
	for _, want := range []string{"title timenode 0.3.0+abc (slot b)", "linux /timenode/b/vmlinuz", "options root=PARTUUID=2222-bbbb ro rootfstype=ext4 apparmor=1 rauc.slot=b\n"} {
		if !bytes.Contains(ent.Body, []byte(want)) {
			t.Errorf("entry lacks %q:\n%s", want, ent.Body)
		}
	}
	// Without the slot's partition in by-partuuid nothing is written.
	os.Remove(filepath.Join(byUUID, "2222-bbbb"))
	errb.Reset()
	code = dispatch([]string{"update", "install-entry", "--esp", esp, "--slot", "b", "--root", root,
		"--device", filepath.Join(dev, "tn-root-b"), "--by-partuuid", byUUID, "--verity", bundle}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "no partition UUID") {
		t.Fatalf("install-entry without a partition UUID: %d %q", code, errb.String())
	}
}

// gateRig runs the gate on a fake clock against an ESP and a health
// script.
type gateRig struct {
	esp                 string
	env                 gateEnv
	log                 bytes.Buffer
	committed, rebooted int
	now                 time.Time
}

func newGateRig(t *testing.T, booted string, health func(int) (bool, string, error)) *gateRig {
	t.Helper()
	r := &gateRig{esp: flashedESP(t), now: time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)}
	calls := 0
	r.env = gateEnv{
		esp: slots.ESP{Dir: r.esp}, cmdline: "root=PARTUUID=x ro rauc.slot=" + booted, version: "0.3.0+abc",
		recordDir: filepath.Join(t.TempDir(), "rec"), textfile: filepath.Join(t.TempDir(), "update.prom"),
		now:   func() time.Time { return r.now },
		sleep: func(_ context.Context, d time.Duration) error { r.now = r.now.Add(d); return nil },
		health: func(context.Context) (bool, string, error) {
			calls++
			return health(calls)
		},
		provisioned: func() bool { return true },
		commit: func(context.Context) error {
			r.committed++
			return slots.ESP{Dir: r.esp}.SetState(booted, slots.Good)
		},
		reboot: func(context.Context) error { r.rebooted++; return nil },
		log:    &r.log,
	}
	return r
}

// boots runs the gate of a committed slot for two boots, with a fresh
// log, and counts the lines holding needle.
func (r *gateRig) boots(t *testing.T, needle string) int {
	t.Helper()
	r.log.Reset()
	for i := 0; i < 2; i++ {
		if err := runGate(context.Background(), r.env, time.Minute, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Count(r.log.String(), needle)
}

// factoryReset plays a factory reset on the rig: the request applied
// (mkfs faked), then the gate's records in /var gone with the rest.
func (r *gateRig) factoryReset(t *testing.T) {
	t.Helper()
	defer func(f func(context.Context, io.Writer, io.Writer, string, ...string) error) { runner = f }(runner)
	runner = func(context.Context, io.Writer, io.Writer, string, ...string) error { return nil }
	if err := requestReset(espOf(r.esp)); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if done, err := applyReset(context.Background(), espOf(r.esp), "/dev/fake", t.TempDir(), &log); !done || err != nil {
		t.Fatalf("reset: %v %v\n%s", done, err, log.String())
	}
	if err := os.RemoveAll(r.env.recordDir); err != nil {
		t.Fatal(err)
	}
}

// trial installs b and plays the firmware's first boot of it.
func (r *gateRig) trial(t *testing.T) {
	t.Helper()
	e := slots.ESP{Dir: r.esp}
	if err := e.Install("b", entryFor("b", "timenode 0.3.0", "bbbb", "ro")); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPrimary("b", slots.DefaultTries); err != nil {
		t.Fatal(err)
	}
	r.firmwareBoot(t)
}

// firmwareBoot plays systemd-boot's counter on the first entry.
func (r *gateRig) firmwareBoot(t *testing.T) string {
	t.Helper()
	es, err := slots.ESP{Dir: r.esp}.Entries()
	if err != nil {
		t.Fatal(err)
	}
	b := es[0]
	if b.Left > 0 {
		dir := filepath.Join(r.esp, slots.EntriesDir)
		os.Rename(filepath.Join(dir, b.Name), filepath.Join(dir, fmt.Sprintf("timenode-%s+%d-%d.conf", b.Slot, b.Left-1, b.Done+1)))
	}
	return b.Slot
}

func TestGateCommitsWhenTheNodeServes(t *testing.T) {
	r := newGateRig(t, "b", func(n int) (bool, string, error) {
		return n >= 4, fmt.Sprintf("/health %d", map[bool]int{true: 200, false: 503}[n >= 4]), nil
	})
	r.trial(t)
	if err := runGate(context.Background(), r.env, 20*time.Minute, 5*time.Second); err != nil {
		t.Fatal(err, r.log.String())
	}
	if r.committed != 1 || r.rebooted != 0 {
		t.Fatalf("committed %d, rebooted %d; want 1, 0\n%s", r.committed, r.rebooted, r.log.String())
	}
	if !strings.Contains(r.log.String(), "update committed: slot b (0.3.0+abc)") {
		t.Errorf("log lacks the commit line:\n%s", r.log.String())
	}
	prom, _ := os.ReadFile(r.env.textfile)
	for _, want := range []string{`timenode_update_info{booted="b",primary="b",version="0.3.0+abc"} 1`, `timenode_update_slot_trial{slot="b"} 0`, "timenode_update_rollbacks_total 0"} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("metrics lack %q:\n%s", want, prom)
		}
	}
	// Later boots of the committed slot judge nothing.
	r.firmwareBoot(t)
	if err := runGate(context.Background(), r.env, 20*time.Minute, 5*time.Second); err != nil || r.committed != 1 {
		t.Fatalf("gate on a committed slot: %v, committed %d", err, r.committed)
	}
}

func TestGateFailsAndTheFirmwareRollsBack(t *testing.T) {
	tests := []struct {
		name       string
		health     func(int) (bool, string, error)
		wantReason string
	}{
		{"never serves", func(int) (bool, string, error) { return false, "/health 503, clock FREERUN", nil }, "not serving after 20m0s (last: /health 503, clock FREERUN)"},
		{"daemon fails", func(n int) (bool, string, error) {
			if n > 2 {
				return false, "", errors.New("timenoded.service failed (exit-code)")
			}
			return false, "connection refused", nil
		}, "timenoded.service failed (exit-code)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newGateRig(t, "b", tc.health)
			r.trial(t)
			for i := 0; i < slots.DefaultTries; i++ {
				if i > 0 {
					if got := r.firmwareBoot(t); got != "b" {
						t.Fatalf("trial boot %d went to %s", i+1, got)
					}
				}
				if err := runGate(context.Background(), r.env, 20*time.Minute, 5*time.Second); !errors.Is(err, errTrialFailed) {
					t.Fatalf("trial %d: gate returned %v, want errTrialFailed", i+1, err)
				}
			}
			if r.committed != 0 || r.rebooted != slots.DefaultTries {
				t.Fatalf("committed %d, rebooted %d; want 0, %d", r.committed, r.rebooted, slots.DefaultTries)
			}
			if !strings.Contains(r.log.String(), tc.wantReason) {
				t.Fatalf("log lacks the reason %q:\n%s", tc.wantReason, r.log.String())
			}
			// Tries spent: the firmware boots a, whose gate records the rollback once.
			if got := r.firmwareBoot(t); got != "a" {
				t.Fatalf("after the trial ran out the firmware booted %s, want a", got)
			}
			r.env.cmdline = "root=PARTUUID=x ro rauc.slot=a"
			r.log.Reset()
			for i := 0; i < 2; i++ {
				if err := runGate(context.Background(), r.env, 20*time.Minute, 5*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if n := strings.Count(r.log.String(), "update rolled back: slot b"); n != 1 {
				t.Fatalf("rollback logged %d times, want once:\n%s", n, r.log.String())
			}
			if !strings.Contains(r.log.String(), tc.wantReason) {
				t.Errorf("rollback line does not carry the trial's reason %q:\n%s", tc.wantReason, r.log.String())
			}
			prom, _ := os.ReadFile(r.env.textfile)
			for _, want := range []string{"timenode_update_rollbacks_total 1", fmt.Sprintf("timenode_update_trial_failures_total %d", slots.DefaultTries), `timenode_update_slot_bad{slot="b"} 1`, `primary="a"`} {
				if !strings.Contains(string(prom), want) {
					t.Errorf("metrics lack %q:\n%s", want, prom)
				}
			}
		})
	}
}

func TestGateCommitsAnUnprovisionedNodeOnBoot(t *testing.T) {
	r := newGateRig(t, "b", func(int) (bool, string, error) {
		t.Fatal("health asked of an unprovisioned node")
		return false, "", nil
	})
	r.env.provisioned = func() bool { return false }
	r.trial(t)
	if err := runGate(context.Background(), r.env, time.Minute, time.Second); err != nil || r.committed != 1 {
		t.Fatalf("gate: %v, committed %d", err, r.committed)
	}
}

func TestGateWithoutABSlotsDoesNothing(t *testing.T) {
	r := newGateRig(t, "b", nil)
	r.env.cmdline = "root=PARTUUID=x ro"
	if err := runGate(context.Background(), r.env, time.Minute, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.env.textfile); err == nil {
		t.Error("metrics written for a node without A/B slots")
	}
}

func TestUnitFailedReadsSystemd(t *testing.T) {
	defer func(r func(context.Context, io.Writer, io.Writer, string, ...string) error) { runner = r }(runner)
	tests := []struct {
		show string
		want string
	}{
		{"ActiveState=active\nNRestarts=0\nResult=success\n", ""},
		{"ActiveState=failed\nNRestarts=5\nResult=exit-code\n", "failed (exit-code)"},
		{"ActiveState=activating\nNRestarts=7\nResult=exit-code\n", "restarted 7 times"},
	}
	for _, tc := range tests {
		runner = func(_ context.Context, stdout, _ io.Writer, _ string, _ ...string) error {
			io.WriteString(stdout, tc.show)
			return nil
		}
		err := unitFailed(context.Background(), "timenoded.service", 5)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: %v, want %q", tc.show, err, tc.want)
		}
	}
}

// TestUpdateInstallChecksTheBundleFirst runs update install against a fake
// rauc: a bundle whose signature does not verify, or that is for another
// architecture, is refused before rauc install runs, naming both sides; a
// good one is installed.
func TestUpdateInstallChecksTheBundleFirst(t *testing.T) {
	defer func(r func(context.Context, io.Writer, io.Writer, string, ...string) error) { runner = r }(runner)
	dir := t.TempDir()
	conf := filepath.Join(dir, "system.conf")
	if err := os.WriteFile(conf, []byte("[system]\ncompatible=timenode-amd64\nbootloader=custom\n\n[slot.rootfs.0]\ncompatible=wrong-section\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "v2.raucb")
	if err := os.WriteFile(bundle, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := func(compatible string) string {
		return "RAUC_MF_COMPATIBLE='" + compatible + "'\nRAUC_MF_VERSION='0.3.0+abc'\nRAUC_IMAGE_NAME_0='root.ext4'\n"
	}
	tests := []struct {
		name      string
		info      string
		infoErr   error
		code      int
		installed bool
		want      string
	}{
		{"good", manifest("timenode-amd64"), nil, 0, true, "bundle 0.3.0+abc for timenode-amd64, signature verified"},
		{"bad signature", "", errors.New("exit status 1"), 1, false, "did not verify against"},
		{"other architecture", manifest("timenode-arm64"), nil, 1, false, `it is for "timenode-arm64", this appliance is "timenode-amd64"`},
		{"no manifest", "rauc-Message: nothing\n", nil, 1, false, `it is for "", this appliance is "timenode-amd64"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			installed := false
			runner = func(_ context.Context, stdout, _ io.Writer, name string, args ...string) error {
				switch {
				case name == "rauc" && args[0] == "info":
					io.WriteString(stdout, tc.info)
					return tc.infoErr
				case name == "rauc" && args[0] == "install":
					installed = true
					return nil
				}
				return fmt.Errorf("unexpected %s %v", name, args)
			}
			code, out, errOut := run("update", "install", "--system-conf", conf, "--keyring", "/dev/null", bundle)
			if code != tc.code || installed != tc.installed || !strings.Contains(out+errOut, tc.want) {
				t.Fatalf("exit %d, installed %v, want %d, %v and %q:\n%s%s", code, installed, tc.code, tc.installed, tc.want, out, errOut)
			}
			if !tc.installed && !strings.Contains(errOut, "nothing was changed") {
				t.Errorf("refusal does not say nothing was changed: %s", errOut)
			}
		})
	}
}

func TestRaucCompatible(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ body, want, err string }{
		{"[system]\ncompatible = timenode-arm64 \n", "timenode-arm64", ""},
		{"[system]\nbootloader=custom\n", "", "no compatible="},
		{"[slot.rootfs.0]\ncompatible=x\n", "", "no compatible="},
		{"[system]\ncompatible=\n", "", ":2: compatible= is empty"},
	}
	for i, tc := range tests {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := raucCompatible(p)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %q, %v; want %q, %q", tc.body, got, err, tc.want, tc.err)
		}
	}
	if vars := parseShellVars("A='it'\\''s'\nB=plain\nC=\"double\"\nnot a var\n"); vars["A"] != "it's" || vars["B"] != "plain" || vars["C"] != "double" || len(vars) != 3 {
		t.Errorf("parseShellVars: %q", vars)
	}
}

// TestRollbackRecordedOncePerInstall: a failed trial of b is recorded once
// as a rollback; a factory reset (which wipes the gate's records in /var)
// does not make the next boot report it again; a later install of b that
// fails as well is a new rollback, although its entry file has the same
// name as the first one's.
func TestRollbackRecordedOncePerInstall(t *testing.T) {
	never := func(int) (bool, string, error) { return false, "/health 503", nil }
	r := newGateRig(t, "b", never)
	failTrial := func(title string) {
		t.Helper()
		e := slots.ESP{Dir: r.esp}
		if err := e.Install("b", entryFor("b", title, "bbbb", "ro")); err != nil {
			t.Fatal(err)
		}
		if err := e.SetPrimary("b", slots.DefaultTries); err != nil {
			t.Fatal(err)
		}
		r.env.cmdline = "root=PARTUUID=x ro rauc.slot=b"
		for i := 0; i < slots.DefaultTries; i++ {
			if got := r.firmwareBoot(t); got != "b" {
				t.Fatalf("trial boot %d went to %s", i+1, got)
			}
			if err := runGate(context.Background(), r.env, time.Minute, 5*time.Second); !errors.Is(err, errTrialFailed) {
				t.Fatalf("trial %d: %v", i+1, err)
			}
		}
		if got := r.firmwareBoot(t); got != "a" {
			t.Fatalf("after the tries the firmware booted %s", got)
		}
		r.env.cmdline = "root=PARTUUID=x ro rauc.slot=a"
	}
	boots := func() int { return r.boots(t, "update rolled back: slot b") }

	failTrial("timenode 0.3.0")
	if n := boots(); n != 1 {
		t.Fatalf("first failed install: %d rollback lines over two boots, want 1:\n%s", n, r.log.String())
	}

	r.factoryReset(t)
	if n := boots(); n != 0 {
		t.Fatalf("after a factory reset the old rollback was reported %d times:\n%s", n, r.log.String())
	}
	if g := (gateEnv{recordDir: r.env.recordDir}); g.counter("rollbacks") != 0 {
		t.Errorf("rollbacks after the reset: %d, want 0", g.counter("rollbacks"))
	}

	failTrial("timenode 0.4.0")
	if n := boots(); n != 1 {
		t.Fatalf("second failed install of the same slot: %d rollback lines, want 1:\n%s", n, r.log.String())
	}
}

// TestGateNotesAVerityRefusalOnce: when the initramfs refused slot b (its
// dm-verity check failed), marked it bad and left why on the ESP, the
// gate of the slot that boots instead says so once, with the reason, in
// the journal, the metrics and update status; a factory reset does not
// make it new again, and a new install of b clears it.
func TestGateNotesAVerityRefusalOnce(t *testing.T) {
	r := newGateRig(t, "a", func(int) (bool, string, error) { return true, "/health 200", nil })
	e := slots.ESP{Dir: r.esp}
	if err := e.Install("b", entryFor("b", "timenode 0.3.0", "bbbb", "ro")); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPrimary("b", slots.DefaultTries); err != nil {
		t.Fatal(err)
	}
	if err := e.SetState("b", slots.Good); err != nil {
		t.Fatal(err)
	}
	// What the initramfs does to a slot whose check failed.
	os.MkdirAll(filepath.Join(r.esp, "timenode/b"), 0o755)
	os.WriteFile(filepath.Join(r.esp, "timenode/b/refused"), []byte("dm-verity: Verification failed at position 104857600.\nVerification of data area failed.\n"), 0o644)
	dir := filepath.Join(r.esp, slots.EntriesDir)
	os.Rename(filepath.Join(dir, "timenode-b.conf"), filepath.Join(dir, "timenode-b+0.conf"))
	r.env.cmdline = "root=PARTUUID=x ro rauc.slot=a"

	boots := func() int { return r.boots(t, "verified root: slot b (timenode 0.3.0 (slot b)) was refused at boot") }
	if n := boots(); n != 1 {
		t.Fatalf("refusal logged %d times over two boots, want once:\n%s", n, r.log.String())
	}
	want := "dm-verity: Verification failed at position 104857600. Verification of data area failed.; running slot a (0.3.0+abc)"
	if !strings.Contains(r.log.String(), want) {
		t.Errorf("the journal line lacks %q:\n%s", want, r.log.String())
	}
	if strings.Contains(r.log.String(), "rolled back") {
		t.Errorf("a refusal was also reported as a rollback:\n%s", r.log.String())
	}
	prom, _ := os.ReadFile(r.env.textfile)
	for _, want := range []string{"timenode_update_verity_refusals_total 1", `timenode_update_slot_bad{slot="b"} 1`, `timenode_update_slot_refused{slot="b"} 1`, `timenode_update_slot_refused{slot="a"} 0`, "timenode_update_rollbacks_total 0"} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("metrics lack %q:\n%s", want, prom)
		}
	}
	var out, errb bytes.Buffer
	if code := dispatch([]string{"update", "status", "--esp", r.esp, "--record-dir", r.env.recordDir}, &out, &errb); code != 0 {
		t.Fatalf("update status: %d %s", code, errb.String())
	}
	for _, want := range []string{"slot b: bad: refused at boot: dm-verity: Verification failed", "refused at boot: 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("update status lacks %q:\n%s", want, out.String())
		}
	}

	// A factory reset wipes the records; the refusal is not new.
	r.factoryReset(t)
	if n := boots(); n != 0 {
		t.Fatalf("after a factory reset the old refusal was reported %d times:\n%s", n, r.log.String())
	}

	// A new install of b takes the refusal away with the old kernel.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, bootDir), 0o755)
	for _, f := range []string{"vmlinuz", "initrd.img", "cmdline"} {
		os.WriteFile(filepath.Join(root, bootDir, f), []byte("x"), 0o644)
	}
	bundle := t.TempDir()
	for _, f := range verityFiles {
		os.WriteFile(filepath.Join(bundle, f), []byte("x"), 0o644)
	}
	dev := filepath.Join(t.TempDir(), "vdb3")
	os.WriteFile(dev, nil, 0o644)
	byUUID := t.TempDir()
	os.Symlink(dev, filepath.Join(byUUID, "bbbb"))
	if err := installEntry(espOf(r.esp), "b", root, dev, byUUID, bundle); err != nil {
		t.Fatal(err)
	}
	if why := refusal(e, "b"); why != "" {
		t.Errorf("a new install of b kept the old refusal %q", why)
	}
}
