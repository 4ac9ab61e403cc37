package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aunsorm/timenode/image/slots"
	"github.com/aunsorm/timenode/netsvc"
	"github.com/aunsorm/timenode/netsvc/site"
)

// Where the appliance keeps what the update commands use.
const (
	defaultESP       = "/boot/efi"
	defaultRecordDir = "/var/lib/timenode-update"
	// bootDir in a root slot holds the kernel, initrd and command line
	// the slot boots with, so an update bundle carries its own kernel.
	bootDir = "usr/lib/timenode/boot"
)

func init() {
	g := registerGroup("update", "A/B updates: install a signed bundle, slot status, the trial-boot gate, RAUC's bootloader backend", 14)
	g.addLeaf("install", leaf{use: "BUNDLE", args: oneArg,
		summary: "verify a signed update bundle and install it into the inactive slot",
		help: `Shows what the bundle is (rauc info, signature checked against the
appliance's update CA), then installs it with RAUC into the slot that is
not running, with RAUC's progress. The running slot is not touched; the
next boot tries the new slot, and timenode-update-gate.service commits it
once timenoded serves, or the boot counter runs out and the running slot
boots again.`,
		flags: updateInstall})
	g.addLeaf("status", leaf{args: noArgs,
		summary: "booted and primary slot, each slot's state and trial, the last trial's outcome",
		flags:   updateStatus})
	g.addLeaf("gate", leaf{args: noArgs,
		summary: "at boot: commit a slot on trial once timenoded serves, or reboot; record a rollback",
		help: `Run by timenode-update-gate.service on every boot. On a slot in trial it
waits until /health on the local API says the node serves (locked, or in
holdover within bound), then marks the slot good (rauc status mark-good).
If timenoded fails or the deadline passes it records why and reboots:
each trial boot uses one try, and when none is left the firmware boots
the other slot. On a committed slot it records a rollback the firmware
made, once. It writes the timenode_update_* metrics in either case.`,
		flags: updateGate})
	g.addLeaf("bootloader", leaf{use: "get-primary | set-primary SLOT | get-state SLOT | set-state SLOT good|bad", args: argRange{1, 3},
		summary: "RAUC's custom bootloader backend over systemd-boot's boot counting",
		flags:   updateBootloader})
	g.addLeaf("install-entry", leaf{args: noArgs,
		summary: "RAUC's post-install hook: the new slot's kernel, initrd, signed dm-verity descriptor and loader entry onto the ESP",
		flags:   updateInstallEntry})
}

// espOf is the ESP at dir, remounted read-write around each change when
// it is a read-only mount (as the appliance mounts it).
func espOf(dir string) slots.ESP {
	return slots.ESP{Dir: dir, Writable: func() (func() error, error) { return remountRW(dir) }}
}

// remountRW makes the mount at dir writable and returns what makes it
// read-only again; a directory that is not a read-only mount point is
// left alone.
func remountRW(dir string) (func() error, error) {
	noop := func() error { return nil }
	ro, ok, err := mountIsReadOnly(dir)
	if err != nil || !ok || !ro {
		return noop, err
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT, ""); err != nil {
		return nil, fmt.Errorf("remount %s read-write: %w", dir, err)
	}
	return func() error {
		unix.Sync()
		if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", dir, err)
		}
		return nil
	}, nil
}

// mountIsReadOnly reports whether dir is a mount point (ok) and whether
// it is mounted read-only, from /proc/self/mountinfo.
func mountIsReadOnly(dir string) (ro, ok bool, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false, false, err
	}
	// Touch it first: an automount mounts on access.
	if _, err := os.Stat(filepath.Join(abs, ".")); err != nil {
		return false, false, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[4] != abs {
			continue
		}
		// The last mount at the point wins (an automount's autofs entry
		// comes first, the real mount after it).
		ok = true
		ro = false
		for _, o := range strings.Split(fs[5], ",") {
			if o == "ro" {
				ro = true
			}
		}
	}
	return ro, ok, sc.Err()
}

func updateBootloader(fs *flag.FlagSet) runFunc {
	esp := fs.String("esp", defaultESP, "the EFI system partition's mount point")
	tries := fs.Int("tries", slots.DefaultTries, "trial boots a new primary slot gets")
	return func(args []string, stdout, stderr io.Writer) int {
		const prog = "timenodectl update bootloader"
		e := espOf(*esp)
		op, rest := args[0], args[1:]
		want := map[string]int{"get-primary": 0, "set-primary": 1, "get-state": 1, "set-state": 2}
		n, known := want[op]
		if !known {
			return usageErr(stderr, prog, "unknown operation %q: want get-primary, set-primary, get-state or set-state", op)
		}
		if len(rest) != n {
			return usageErr(stderr, prog, "%s takes %d argument(s), got %d", op, n, len(rest))
		}
		if n > 0 && !slots.ValidSlot(rest[0]) {
			return usageErr(stderr, prog, "%q is not a slot name", rest[0])
		}
		var err error
		switch op {
		case "get-primary":
			var p string
			if p, err = e.Primary(); err == nil {
				fmt.Fprintln(stdout, p)
			}
		case "set-primary":
			err = e.SetPrimary(rest[0], *tries)
		case "get-state":
			var st slots.State
			if st, err = e.State(rest[0]); err == nil {
				fmt.Fprintln(stdout, st)
			}
		case "set-state":
			st := slots.State(rest[1])
			if st != slots.Good && st != slots.Bad {
				return usageErr(stderr, prog, "state %q: want good or bad", rest[1])
			}
			err = e.SetState(rest[0], st)
		}
		if err != nil {
			return fail(stderr, prog, err)
		}
		return 0
	}
}

// entryFor is a slot's loader entry: the kernel and initrd copied to
// the ESP under timenode/SLOT/, the slot's command line with its root
// partition and RAUC's slot name.
func entryFor(slot, title, partUUID, cmdline string) []byte {
	return fmt.Appendf(nil, "title %s (slot %s)\nsort-key timenode\nversion 0\nlinux /timenode/%s/vmlinuz\ninitrd /timenode/%s/initrd.img\noptions root=PARTUUID=%s %s rauc.slot=%s\n",
		title, slot, slot, slot, partUUID, strings.TrimSpace(cmdline), slot)
}

// partUUIDOf finds the GPT partition UUID of device through udev's
// /dev/disk/by-partuuid links.
func partUUIDOf(byPartUUID, device string) (string, error) {
	want, err := filepath.EvalSymlinks(device)
	if err != nil {
		return "", err
	}
	des, err := os.ReadDir(byPartUUID)
	if err != nil {
		return "", err
	}
	for _, de := range des {
		got, err := filepath.EvalSymlinks(filepath.Join(byPartUUID, de.Name()))
		if err == nil && got == want {
			return de.Name(), nil
		}
	}
	return "", fmt.Errorf("no partition UUID for %s in %s", device, byPartUUID)
}

// osReleaseField reads one field of an os-release file ("" if absent):
// shell-style assignments, the format rauc info's shell output has too.
func osReleaseField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return parseShellVars(string(b))[key]
}

func updateInstallEntry(fs *flag.FlagSet) runFunc {
	esp := fs.String("esp", defaultESP, "the EFI system partition's mount point")
	slot := fs.String("slot", os.Getenv("RAUC_SLOT_BOOTNAME"), "the slot written (RAUC_SLOT_BOOTNAME)")
	root := fs.String("root", os.Getenv("RAUC_SLOT_MOUNT_POINT"), "where the new slot is mounted (RAUC_SLOT_MOUNT_POINT)")
	device := fs.String("device", os.Getenv("RAUC_SLOT_DEVICE"), "the slot's partition (RAUC_SLOT_DEVICE)")
	byPartUUID := fs.String("by-partuuid", "/dev/disk/by-partuuid", "udev's partition UUID links")
	verity := fs.String("verity", os.Getenv("RAUC_BUNDLE_MOUNT_POINT"), "the directory holding the slot's signed dm-verity descriptor, verity.env and verity.env.p7s (the bundle: RAUC_BUNDLE_MOUNT_POINT)")
	return func(_ []string, stdout, stderr io.Writer) int {
		const prog = "timenodectl update install-entry"
		if !slots.ValidSlot(*slot) || *root == "" || *device == "" || *verity == "" {
			return usageErr(stderr, prog, "--slot, --root, --device and --verity are required (RAUC sets them for a post-install hook)")
		}
		err := installEntry(espOf(*esp), *slot, *root, *device, *byPartUUID, *verity)
		if err != nil {
			return fail(stderr, prog, err)
		}
		fmt.Fprintf(stdout, "slot %s: kernel, initrd and loader entry on %s\n", *slot, *esp)
		return 0
	}
}

// verityFiles are the slot's dm-verity descriptor and its signature, which
// the initramfs reads from the slot's directory on the ESP.
var verityFiles = []string{"verity.env", "verity.env.p7s"}

// installEntry puts the new slot's kernel and initrd (from the slot), its
// verity descriptor (from the bundle: the slot cannot carry its own root
// hash) and a loader entry on the ESP.
func installEntry(e slots.ESP, slot, root, device, byPartUUID, verity string) error {
	uuid, err := partUUIDOf(byPartUUID, device)
	if err != nil {
		return err
	}
	for _, f := range verityFiles {
		// Without them the slot could never boot: refuse before the ESP
		// changes, so RAUC fails the install and keeps the old slot.
		if fi, err := os.Stat(filepath.Join(verity, f)); err != nil || fi.Size() == 0 {
			return fmt.Errorf("the bundle has no dm-verity descriptor %s in %s: a slot without one does not boot", f, verity)
		}
	}
	cmdline, err := os.ReadFile(filepath.Join(root, bootDir, "cmdline"))
	if err != nil {
		return fmt.Errorf("the new slot has no command line: %w", err)
	}
	title := "timenode " + osReleaseField(filepath.Join(root, "usr/lib/os-release"), "IMAGE_VERSION")
	done, err := e.Writable()
	if err != nil {
		return err
	}
	dst := filepath.Join(e.Dir, "timenode", slot)
	copyErr := os.MkdirAll(dst, 0o755)
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		if copyErr == nil {
			copyErr = copySync(filepath.Join(root, bootDir, f), filepath.Join(dst, f))
		}
	}
	for _, f := range verityFiles {
		if copyErr == nil {
			copyErr = copySync(filepath.Join(verity, f), filepath.Join(dst, f))
		}
	}
	// The old install's refusal is not this one's.
	if err := os.Remove(filepath.Join(dst, refusedFile)); copyErr == nil && err != nil && !os.IsNotExist(err) {
		copyErr = err
	}
	if err := done(); copyErr == nil {
		copyErr = err
	}
	if copyErr != nil {
		return copyErr
	}
	return e.Install(slot, entryFor(slot, strings.TrimSpace(title), uuid, string(cmdline)))
}

// copySync copies src to dst through a temporary file, synced, renamed.
func copySync(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// runner runs an external command (rauc, systemctl); tests replace it.
var runner = func(ctx context.Context, stdout, stderr io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
}

func updateInstall(fs *flag.FlagSet) runFunc {
	keyring := fs.String("keyring", "/etc/rauc/update-ca.pem", "the update CA the bundle's signature must chain to")
	sysConf := fs.String("system-conf", "/etc/rauc/system.conf", "RAUC's system configuration, whose compatible= the bundle must match")
	return func(args []string, stdout, stderr io.Writer) int {
		const prog = "timenodectl update install"
		bundle := args[0]
		fi, err := os.Stat(bundle)
		if err != nil {
			return fail(stderr, prog, err)
		}
		if !fi.Mode().IsRegular() {
			return fail(stderr, prog, fmt.Errorf("%s is not a regular file", bundle))
		}
		ctx := context.Background()
		fmt.Fprintf(stdout, "checking %s (%d MiB)\n", bundle, fi.Size()>>20)
		var info bytes.Buffer
		if err := runner(ctx, &info, stderr, "rauc", "info", "--output-format=shell", "--keyring", *keyring, bundle); err != nil {
			return fail(stderr, prog, fmt.Errorf("%s refused: its signature, format or content did not verify against %s (%v); nothing was changed", bundle, *keyring, err))
		}
		manifest := parseShellVars(info.String())
		want, err := raucCompatible(*sysConf)
		if err != nil {
			return fail(stderr, prog, err)
		}
		// RAUC refuses it too, but only after its own checks and with a
		// message that names neither side; say it before anything runs.
		if got := manifest["RAUC_MF_COMPATIBLE"]; got != want {
			return fail(stderr, prog, fmt.Errorf("%s refused: it is for %q, this appliance is %q (%s); nothing was changed", bundle, got, want, *sysConf))
		}
		fmt.Fprintf(stdout, "bundle %s for %s, signature verified against %s\n", manifest["RAUC_MF_VERSION"], want, *keyring)
		if err := runner(ctx, stdout, stderr, "rauc", "install", bundle); err != nil {
			return fail(stderr, prog, fmt.Errorf("rauc install %s: %v; the running slot is unchanged", bundle, err))
		}
		fmt.Fprintln(stdout, "installed: the next boot tries the new slot (sudo systemctl reboot); it is committed once timenoded serves, else the running slot boots again")
		return 0
	}
}

// parseShellVars reads NAME=value lines as rauc info --output-format=shell
// and os-release write them: a value bare, in double quotes, or in single
// quotes with a quote inside written the shell's way (close,
// backslash-quote, reopen); other lines are ignored.
func parseShellVars(out string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		name, val, ok := strings.Cut(line, "=")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		switch {
		case len(val) >= 2 && val[0] == '\'' && val[len(val)-1] == '\'':
			val = strings.ReplaceAll(val[1:len(val)-1], `'\''`, "'")
		case len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"':
			val = val[1 : len(val)-1]
		}
		vars[name] = val
	}
	return vars
}

// raucCompatible returns the compatible= of RAUC's system configuration:
// the one string a bundle's manifest must carry to be installed here.
func raucCompatible(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("RAUC system configuration: %w", err)
	}
	section := ""
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "[system]" && strings.TrimSpace(k) == "compatible" {
			if v = strings.TrimSpace(v); v != "" {
				return v, nil
			}
			return "", fmt.Errorf("%s:%d: compatible= is empty", path, n+1)
		}
	}
	return "", fmt.Errorf("%s: no compatible= in its [system] section", path)
}

// trialRecord is what the gate keeps of the last trial: why it failed,
// or that it was committed.
type trialRecord struct {
	Slot    string    `json:"slot"`
	Version string    `json:"version"`
	At      time.Time `json:"at"`
	Outcome string    `json:"outcome"` // committed, failed
	Reason  string    `json:"reason,omitempty"`
	// Entry is the slot's loader entry name when judged, so a rollback
	// is recorded once.
	Entry string `json:"entry,omitempty"`
}

// gateEnv is what the gate reads and does, injected for tests.
type gateEnv struct {
	esp       slots.ESP
	cmdline   string
	version   string // IMAGE_VERSION of the booted slot
	recordDir string
	textfile  string // "" for none
	now       func() time.Time
	sleep     func(context.Context, time.Duration) error
	// health says whether the node serves; a non-nil error is fatal
	// for the trial (timenoded failed), ok=false means not yet.
	health func(context.Context) (ok bool, detail string, err error)
	// provisioned says whether timenoded has site material to serve.
	provisioned func() bool
	commit      func(context.Context) error
	reboot      func(context.Context) error
	log         io.Writer
}

// errTrialFailed is returned when the gate rebooted out of a trial.
var errTrialFailed = errors.New("trial failed")

// runGate is the gate's logic: see the leaf's help.
func runGate(ctx context.Context, g gateEnv, deadline, poll time.Duration) error {
	slot, ok := slots.BootedSlot(g.cmdline)
	if !ok {
		fmt.Fprintln(g.log, "update gate: not booted from an A/B slot (no rauc.slot= on the command line); nothing to judge")
		return nil
	}
	ent, err := g.esp.Find(slot)
	if err != nil {
		return err
	}
	defer g.writeMetrics(slot)
	// Whatever this boot is, say why the initramfs passed a slot over.
	if err := g.noteRefusals(slot); err != nil {
		fmt.Fprintf(g.log, "update gate: %v\n", err)
	}
	// The booted entry still has a counter: on trial. systemd-boot took
	// one try before booting it, so on the last trial none is left.
	if ent.Left < 0 {
		return g.noteRollback(slot)
	}
	start := g.now()
	fmt.Fprintf(g.log, "update gate: slot %s (%s) on trial, %d more trial boot(s) after this one; committing once timenoded serves, within %v\n", slot, g.version, ent.Left, deadline)
	reason := ""
	if !g.provisioned() {
		// Nothing to serve yet: the trial can judge only that the system
		// came up, which it did to run this.
		fmt.Fprintf(g.log, "update gate: the node is not provisioned; committing slot %s on a completed boot\n", slot)
	} else {
		for {
			ok, detail, err := g.health(ctx)
			if err != nil {
				reason = err.Error()
				break
			}
			if ok {
				fmt.Fprintf(g.log, "update gate: timenoded serves after %v: %s\n", g.now().Sub(start).Round(time.Second), detail)
				break
			}
			if g.now().Sub(start) >= deadline {
				reason = fmt.Sprintf("timenoded not serving after %v (last: %s)", deadline, detail)
				break
			}
			if err := g.sleep(ctx, poll); err != nil {
				return err
			}
		}
	}
	rec := trialRecord{Slot: slot, Version: g.version, At: g.now().UTC(), Entry: ent.Name}
	if reason == "" {
		if err := g.commit(ctx); err != nil {
			return fmt.Errorf("commit slot %s: %w", slot, err)
		}
		rec.Outcome = "committed"
		fmt.Fprintf(g.log, "update committed: slot %s (%s)\n", slot, g.version)
		return g.keep(rec, false)
	}
	rec.Outcome, rec.Reason = "failed", reason
	fmt.Fprintf(g.log, "update trial failed: slot %s (%s): %s; rebooting (%d trial boot(s) left, then the other slot boots)\n", slot, g.version, reason, ent.Left)
	if err := g.keep(rec, true); err != nil {
		fmt.Fprintf(g.log, "update gate: %v\n", err)
	}
	g.writeMetrics(slot)
	if err := g.reboot(ctx); err != nil {
		return fmt.Errorf("reboot after a failed trial: %w", err)
	}
	return errTrialFailed
}

// keep writes the trial record and, for a failure, counts it.
func (g gateEnv) keep(rec trialRecord, failed bool) error {
	if err := os.MkdirAll(g.recordDir, 0o755); err != nil {
		return err
	}
	b, _ := json.Marshal(rec)
	if err := writeFileSync(filepath.Join(g.recordDir, "last-trial.json"), append(b, '\n')); err != nil {
		return err
	}
	if failed {
		return g.bump("trial-failures")
	}
	return nil
}

// noteRollback records, once, that the firmware passed over a slot whose
// trial ran out and booted this one.
func (g gateEnv) noteRollback(booted string) error {
	es, err := g.esp.Entries()
	if err != nil {
		return err
	}
	last := g.lastTrial()
	known := knownRollbacks(g.esp)
	for _, e := range es {
		if e.Slot == booted || !e.Bad() || e.Done == 0 {
			continue
		}
		key := rollbackKey(e)
		if g.seen("rollback-"+key, key, known) {
			continue
		}
		why := "its trial boots ran out"
		if last.Slot == e.Slot && last.Outcome == "failed" {
			why = fmt.Sprintf("its trial failed (%s: %s)", last.Version, last.Reason)
		}
		fmt.Fprintf(g.log, "update rolled back: slot %s was tried %d time(s) and not committed, %s; running slot %s (%s)\n", e.Slot, e.Done, why, booted, g.version)
		if err := g.record("rollback-"+key, why, "rollbacks"); err != nil {
			return err
		}
	}
	return nil
}

// seen reports whether an event (a rollback, a refusal) was reported
// already: its record file is in the record directory, or a factory reset
// listed its key as known.
func (g gateEnv) seen(file, key string, known map[string]bool) bool {
	_, err := os.Stat(filepath.Join(g.recordDir, file))
	return err == nil || known[key]
}

// record keeps a reported event: its record file, holding why, and one
// more on its counter.
func (g gateEnv) record(file, why, counter string) error {
	if err := os.MkdirAll(g.recordDir, 0o755); err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(g.recordDir, file), []byte(why+"\n")); err != nil {
		return err
	}
	return g.bump(counter)
}

// refusedFile, in a slot's directory on the ESP, says why the initramfs
// refused to mount that slot (its root hash signature or its dm-verity
// check failed): the initramfs writes it as it marks the slot bad, and
// install-entry removes it with the slot's old kernel.
const refusedFile = "refused"

// refusal is why slot was refused at boot, on one line; "" if it was not.
func refusal(e slots.ESP, slot string) string {
	b, err := os.ReadFile(filepath.Join(e.Dir, "timenode", slot, refusedFile))
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// refusalKey names one refusal of one install, as rollbackKey names a
// rollback.
func refusalKey(e slots.Entry, why string) string {
	sum := sha256.Sum256(append(append([]byte(nil), e.Body...), why...))
	return "refused-" + e.Name + "-" + hex.EncodeToString(sum[:6])
}

// noteRefusals records, once, each other slot the initramfs refused to
// mount and passed over (the firmware then booted this one).
func (g gateEnv) noteRefusals(booted string) error {
	es, err := g.esp.Entries()
	if err != nil {
		return err
	}
	known := knownRollbacks(g.esp)
	for _, e := range es {
		if e.Slot == booted || !e.Bad() {
			continue
		}
		why := refusal(g.esp, e.Slot)
		if why == "" {
			continue
		}
		key := refusalKey(e, why)
		if g.seen(key, key, known) {
			continue
		}
		fmt.Fprintf(g.log, "verified root: slot %s (%s) was refused at boot and is passed over: %s; running slot %s (%s)\n", e.Slot, entryTitle(e), why, booted, g.version)
		if err := g.record(key, why, "verity-refusals"); err != nil {
			return err
		}
	}
	return nil
}

// entryTitle is the title line of a loader entry.
func entryTitle(e slots.Entry) string {
	for _, line := range strings.Split(string(e.Body), "\n") {
		if v, ok := strings.CutPrefix(line, "title "); ok {
			return v
		}
	}
	return ""
}

// rollbackKey names one rolled-back install: the entry's file name with
// its boot counter, and its content, which differs for every install
// (the title carries the software's version, the version line the order
// it was made primary in). The name alone is the same for every failed
// trial of a slot, and a second rollback of it went unrecorded.
func rollbackKey(e slots.Entry) string {
	sum := sha256.Sum256(e.Body)
	return e.Name + "-" + hex.EncodeToString(sum[:6])
}

// rollbacksKnownFile, on the ESP, lists the rollbacks a factory reset
// found already there (one rollbackKey per line): the reset wipes the
// gate's records in /var, and without the list the first boot after it
// reported every old rollback again as new.
const rollbacksKnownFile = "timenode/rollbacks-known"

// knownRollbacks reads rollbacksKnownFile (empty when absent).
func knownRollbacks(e slots.ESP) map[string]bool {
	known := map[string]bool{}
	b, err := os.ReadFile(filepath.Join(e.Dir, rollbacksKnownFile))
	if err != nil {
		return known
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			known[line] = true
		}
	}
	return known
}

func (g gateEnv) lastTrial() trialRecord {
	var rec trialRecord
	b, err := os.ReadFile(filepath.Join(g.recordDir, "last-trial.json"))
	if err == nil {
		_ = json.Unmarshal(b, &rec)
	}
	return rec
}

// counter reads a persisted count (0 when absent).
func (g gateEnv) counter(name string) int {
	b, err := os.ReadFile(filepath.Join(g.recordDir, name))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func (g gateEnv) bump(name string) error {
	return writeFileSync(filepath.Join(g.recordDir, name), []byte(strconv.Itoa(g.counter(name)+1)+"\n"))
}

// writeMetrics writes the timenode_update_* series for the daemon's
// textfile collector.
func (g gateEnv) writeMetrics(booted string) {
	if g.textfile == "" {
		return
	}
	var b bytes.Buffer
	primary, _ := g.esp.Primary()
	b.WriteString("# HELP timenode_update_info The slot running, the slot the firmware boots next, and the running version.\n# TYPE timenode_update_info gauge\n")
	fmt.Fprintf(&b, "timenode_update_info{booted=%q,primary=%q,version=%q} 1\n", booted, primary, g.version)
	b.WriteString("# HELP timenode_update_slot_trial 1 while a slot is installed but not committed (boots left in its counter).\n# TYPE timenode_update_slot_trial gauge\n")
	b.WriteString("# HELP timenode_update_slot_bad 1 when the firmware passes a slot over (its trial ran out, or it is being written).\n# TYPE timenode_update_slot_bad gauge\n")
	es, _ := g.esp.Entries()
	var trial, bad, refused bytes.Buffer
	for _, e := range es {
		fmt.Fprintf(&trial, "timenode_update_slot_trial{slot=%q} %d\n", e.Slot, b2i(e.InTrial()))
		fmt.Fprintf(&bad, "timenode_update_slot_bad{slot=%q} %d\n", e.Slot, b2i(e.Bad()))
		fmt.Fprintf(&refused, "timenode_update_slot_refused{slot=%q} %d\n", e.Slot, b2i(e.Bad() && refusal(g.esp, e.Slot) != ""))
	}
	b.Write(trial.Bytes())
	b.Write(bad.Bytes())
	b.WriteString("# HELP timenode_update_slot_refused 1 while a slot stands refused by the initramfs (its dm-verity check failed at boot), until a bundle is installed into it.\n# TYPE timenode_update_slot_refused gauge\n")
	b.Write(refused.Bytes())
	fmt.Fprintf(&b, "# HELP timenode_update_trial_failures_total Trial boots the gate failed (each reboots).\n# TYPE timenode_update_trial_failures_total counter\ntimenode_update_trial_failures_total %d\n", g.counter("trial-failures"))
	fmt.Fprintf(&b, "# HELP timenode_update_rollbacks_total Updates the firmware rolled back after their trial boots ran out.\n# TYPE timenode_update_rollbacks_total counter\ntimenode_update_rollbacks_total %d\n", g.counter("rollbacks"))
	fmt.Fprintf(&b, "# HELP timenode_update_verity_refusals_total Root slots the initramfs refused to mount (signature or dm-verity check failed) and passed over.\n# TYPE timenode_update_verity_refusals_total counter\ntimenode_update_verity_refusals_total %d\n", g.counter("verity-refusals"))
	if err := os.MkdirAll(filepath.Dir(g.textfile), 0o755); err == nil {
		if err := writeFileSync(g.textfile, b.Bytes()); err != nil {
			fmt.Fprintf(g.log, "update gate: %v\n", err)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeFileSync writes path atomically: a synced temporary file renamed.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// localHealth asks the node's own API, as the balancer does, whether it
// serves. The server must present exactly the provisioned certificate
// (tls.crt), so nothing but this node's timenoded can pass the gate.
func localHealth(url, tlsCert string) func(context.Context) (bool, string, error) {
	return func(ctx context.Context) (bool, string, error) {
		pemBytes, err := os.ReadFile(tlsCert)
		if err != nil {
			return false, "", fmt.Errorf("read %s: %w", tlsCert, err)
		}
		var leaf []byte
		if certs, err := parseCertsPEM(pemBytes); err == nil && len(certs) > 0 {
			leaf = certs[0].Raw
		} else {
			return false, "", fmt.Errorf("%s: no certificate", tlsCert)
		}
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			MinVersion:         tls.VersionTLS13,
			InsecureSkipVerify: true, // replaced by the pin below: the local name is not in the certificate
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 || !bytes.Equal(raw[0], leaf) {
					return errors.New("the local API does not present the provisioned certificate")
				}
				return nil
			},
		}}}
		defer client.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
		if err != nil {
			return false, "", err
		}
		req.Header.Set(netsvc.MeshHeader, "gateway")
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error(), nil // not listening yet
		}
		defer resp.Body.Close()
		var h netsvc.Health
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = json.Unmarshal(body, &h)
		detail := fmt.Sprintf("/health %d, clock %s %s", resp.StatusCode, h.Clock.State, h.Reason)
		return resp.StatusCode == http.StatusOK, detail, nil
	}
}

func parseCertsPEM(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out, nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// unitFailed reads timenoded.service's state from systemd: an error when
// it failed or keeps restarting, which no wait will mend.
func unitFailed(ctx context.Context, unit string, maxRestarts int) error {
	var out bytes.Buffer
	if err := runner(ctx, &out, io.Discard, "systemctl", "show", "-p", "ActiveState", "-p", "NRestarts", "-p", "Result", unit); err != nil {
		return nil // cannot tell: the health check decides
	}
	props := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			props[k] = v
		}
	}
	if props["ActiveState"] == "failed" {
		return fmt.Errorf("%s failed (%s)", unit, props["Result"])
	}
	if n, _ := strconv.Atoi(props["NRestarts"]); n >= maxRestarts {
		return fmt.Errorf("%s restarted %d times (%s)", unit, n, props["Result"])
	}
	return nil
}

func updateGate(fs *flag.FlagSet) runFunc {
	esp := fs.String("esp", defaultESP, "the EFI system partition's mount point")
	deadline := fs.Duration("deadline", envDuration("TIMENODE_UPDATE_DEADLINE", 20*time.Minute), "how long a trial boot may take to serve (env TIMENODE_UPDATE_DEADLINE)")
	url := fs.String("url", "https://127.0.0.1:5443", "the node's API")
	stateDir := fs.String("state-dir", site.DefaultStateDir, "timenoded's state directory (its provisioned tls.crt is the pin)")
	recordDir := fs.String("record-dir", defaultRecordDir, "where trial outcomes and counts persist")
	textfile := fs.String("textfile", "/run/timenode-textfile/update.prom", "the metrics file for timenoded's textfile collector (empty: none)")
	return func(_ []string, stdout, stderr io.Writer) int {
		const prog = "timenodectl update gate"
		cmdline, err := os.ReadFile("/proc/cmdline")
		if err != nil {
			return fail(stderr, prog, err)
		}
		siteDir := filepath.Join(*stateDir, site.Link)
		health := localHealth(*url, filepath.Join(siteDir, site.TLSCert))
		g := gateEnv{
			esp: espOf(*esp), cmdline: string(cmdline),
			version:   osReleaseField("/usr/lib/os-release", "IMAGE_VERSION"),
			recordDir: *recordDir, textfile: *textfile, now: time.Now, log: stdout,
			sleep: func(ctx context.Context, d time.Duration) error {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(d):
					return nil
				}
			},
			health: func(ctx context.Context) (bool, string, error) {
				if err := unitFailed(ctx, "timenoded.service", 5); err != nil {
					return false, "", err
				}
				return health(ctx)
			},
			provisioned: func() bool { _, err := os.Stat(siteDir); return err == nil },
			commit: func(ctx context.Context) error {
				return runner(ctx, stdout, stderr, "rauc", "status", "mark-good", "booted")
			},
			reboot: func(ctx context.Context) error { return runner(ctx, stdout, stderr, "systemctl", "reboot") },
		}
		switch err := runGate(context.Background(), g, *deadline, 5*time.Second); {
		case errors.Is(err, errTrialFailed):
			return 1
		case err != nil:
			return fail(stderr, prog, err)
		}
		return 0
	}
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func updateStatus(fs *flag.FlagSet) runFunc {
	esp := fs.String("esp", defaultESP, "the EFI system partition's mount point")
	recordDir := fs.String("record-dir", defaultRecordDir, "where trial outcomes persist")
	return func(_ []string, stdout, stderr io.Writer) int {
		const prog = "timenodectl update status"
		e := slots.ESP{Dir: *esp}
		es, err := e.Entries()
		if err != nil {
			return fail(stderr, prog, err)
		}
		cmdline, _ := os.ReadFile("/proc/cmdline")
		booted, _ := slots.BootedSlot(string(cmdline))
		fmt.Fprintf(stdout, "booted:  %s (%s)\n", orDash(booted), orDash(osReleaseField("/usr/lib/os-release", "IMAGE_VERSION")))
		if len(es) > 0 {
			fmt.Fprintf(stdout, "primary: %s (the firmware boots it next)\n", es[0].Slot)
		}
		for _, ent := range es {
			state := "committed"
			why := refusal(e, ent.Slot)
			switch {
			case ent.Bad() && why != "":
				state = "bad: refused at boot: " + why
			case ent.Bad() && ent.Done > 0:
				state = fmt.Sprintf("bad: tried %d time(s), not committed", ent.Done)
			case ent.Bad():
				state = "bad: being written or never activated"
			case ent.InTrial():
				state = fmt.Sprintf("on trial: %d boot(s) left", ent.Left)
			}
			fmt.Fprintf(stdout, "slot %s: %s; %s\n", ent.Slot, state, entryTitle(ent))
		}
		g := gateEnv{recordDir: *recordDir}
		if rec := g.lastTrial(); rec.Slot != "" {
			fmt.Fprintf(stdout, "last trial: slot %s (%s) %s at %s", rec.Slot, rec.Version, rec.Outcome, rec.At.Format(time.RFC3339))
			if rec.Reason != "" {
				fmt.Fprintf(stdout, ": %s", rec.Reason)
			}
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "trial failures: %d, rollbacks: %d, refused at boot: %d\n", g.counter("trial-failures"), g.counter("rollbacks"), g.counter("verity-refusals"))
		return 0
	}
}
