//go:build linux

package shipped

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// bundles are the update bundles the test installs, made on the host with
// image/bundle.sh from the image's own root file system.
type bundles struct {
	v1, v2, v3              string // versions
	good, broken            string // v2, and v3 whose daemon exits at once
	otherCA, cut, otherArch string // refused: signed under another CA, truncated, for arm64
}

// makeBundles relabels the image's root.ext4 as v2 (os-release only: the
// software is the build under test), makes v3 from v2 with a timenoded
// that exits 1, and signs them with the update keys the image trusts
// (build/update-keys, made by image/build.sh through bundle.sh --dev-ca).
func makeBundles(t testing.TB, root, buildDir, dir string) bundles {
	t.Helper()
	needTools(t, map[string]string{"rauc": "rauc", "mksquashfs": "squashfs-tools", "debugfs": "e2fsprogs", "openssl": "openssl"})
	keys := filepath.Join(buildDir, "..", "update-keys")
	ca, cert, key := filepath.Join(keys, "ca.pem"), filepath.Join(keys, "signer.pem"), filepath.Join(keys, "signer.key")
	for _, f := range []string{ca, cert, key} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v: the image was not built with the development update keys", err)
		}
	}
	osRelease := run(t, "debugfs", "-R", "cat /usr/lib/os-release", filepath.Join(buildDir, "root.ext4"))
	m := regexp.MustCompile(`(?m)^IMAGE_VERSION=(.+)$`).FindStringSubmatch(osRelease)
	if m == nil {
		t.Fatalf("no IMAGE_VERSION in the image's os-release:\n%s", osRelease)
	}
	b := bundles{v1: m[1], v2: m[1] + ".v2", v3: m[1] + ".v3"}
	variant := func(name, version string, edit func(img string)) string {
		d := filepath.Join(dir, name)
		os.MkdirAll(d, 0o755)
		img := filepath.Join(d, "root.ext4")
		run(t, "cp", "--sparse=always", filepath.Join(buildDir, "root.ext4"), img)
		rel := filepath.Join(d, "os-release")
		os.WriteFile(rel, []byte(strings.Replace(osRelease, "IMAGE_VERSION="+b.v1, "IMAGE_VERSION="+version, 1)), 0o644)
		debugfsWrite(t, img, rel, "/usr/lib/os-release", "0100644")
		if edit != nil {
			edit(img)
		}
		return d
	}
	bundle := func(d, version, arch string, env ...string) string {
		os.WriteFile(filepath.Join(d, "version"), []byte(fmt.Sprintf("VERSION=%s\nARCH=%s\n", version, arch)), 0o644)
		c := exec.Command(filepath.Join(root, "image/bundle.sh"), d)
		c.Env = append(os.Environ(), env...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("bundle.sh %s: %v\n%s", d, err, out)
		}
		return filepath.Join(d, fmt.Sprintf("timenode-%s-%s.raucb", arch, version))
	}
	signed := []string{"UPDATE_CA=" + ca, "UPDATE_CERT=" + cert, "UPDATE_KEY=" + key}
	v2 := variant("v2", b.v2, nil)
	b.good = bundle(v2, b.v2, "amd64", signed...)
	broken := filepath.Join(dir, "timenoded-broken")
	os.WriteFile(broken, []byte("#!/bin/sh\necho 'timenoded: v3 of the update test exits at once' >&2\nexit 1\n"), 0o755)
	v3 := variant("v3", b.v3, func(img string) { debugfsWrite(t, img, broken, "/usr/sbin/timenoded", "0100755") })
	b.broken = bundle(v3, b.v3, "amd64", signed...)
	// Refused ones. RAUC refuses them on the signature or the compatible,
	// before it reads the payload, so a small root image stands in for the
	// real one (two fewer 500 MB squashfs runs).
	small := func(name string) string {
		d := filepath.Join(dir, name)
		tree := filepath.Join(d, "tree")
		os.MkdirAll(tree, 0o755)
		junk := make([]byte, 1<<20)
		for i := range junk {
			junk[i] = byte(i*7919 + i>>8*31)
		}
		os.WriteFile(filepath.Join(tree, "junk"), junk, 0o644)
		run(t, "mkfs.ext4", "-q", "-F", "-b", "4096", "-d", tree, filepath.Join(d, "root.ext4"), "8M")
		run(t, "tune2fs", "-O", "read-only", filepath.Join(d, "root.ext4"))
		return d
	}
	oca, ocert, okey := pki(t, filepath.Join(dir, "other-pki"))
	b.otherCA = bundle(small("otherca"), b.v2, "amd64", "UPDATE_CA="+oca, "UPDATE_CERT="+ocert, "UPDATE_KEY="+okey)
	b.otherArch = bundle(small("arm64"), b.v2, "arm64", signed...)
	whole, err := os.ReadFile(b.good)
	if err != nil {
		t.Fatal(err)
	}
	b.cut = filepath.Join(dir, "cut.raucb")
	os.WriteFile(b.cut, whole[:len(whole)-64<<10], 0o644)
	return b
}

// debugfsWrite replaces path in an ext4 image with a local file, owned by
// root with the given inode mode.
func debugfsWrite(t testing.TB, img, local, path, mode string) {
	t.Helper()
	cmds := fmt.Sprintf("rm %s\nwrite %s %s\nsif %s mode %s\nsif %s uid 0\nsif %s gid 0\n", path, local, path, path, mode, path, path)
	c := exec.Command("debugfs", "-w", "-f", "-", img)
	c.Stdin = strings.NewReader(cmds)
	out, err := c.CombinedOutput()
	if err != nil || strings.Contains(string(out), "debugfs: ") && strings.Contains(string(out), "rror") {
		t.Fatalf("debugfs %s in %s: %v\n%s", path, img, err, out)
	}
}

// pki makes a CA and a signer it certifies, with openssl.
func pki(t testing.TB, dir string) (ca, cert, key string) {
	t.Helper()
	os.MkdirAll(dir, 0o700)
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "signer.pem"), filepath.Join(dir, "signer.key")
	cakey, csr, ext := filepath.Join(dir, "ca.key"), filepath.Join(dir, "signer.csr"), filepath.Join(dir, "ext")
	os.WriteFile(ext, []byte("basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\n"), 0o644)
	run(t, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
		"-subj", "/CN=rogue update CA", "-keyout", cakey, "-out", ca,
		"-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign")
	run(t, "openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=rogue signer", "-keyout", key, "-out", csr)
	run(t, "openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", cert)
	return ca, cert, key
}

// slotStatus is `timenodectl update status` in the guest.
func slotStatus(t testing.TB, v *vm) string {
	t.Helper()
	return v.must("sudo timenodectl update status")
}

// bootedSlot is the slot and version the guest runs.
func bootedSlot(t testing.TB, v *vm) (slot, version string) {
	t.Helper()
	cmd := v.must("cat /proc/cmdline")
	if m := regexp.MustCompile(`rauc\.slot=(\S+)`).FindStringSubmatch(cmd); m != nil {
		slot = m[1]
	}
	rel := v.must("cat /usr/lib/os-release")
	if m := regexp.MustCompile(`(?m)^IMAGE_VERSION=(.+)$`).FindStringSubmatch(rel); m != nil {
		version = m[1]
	}
	return slot, version
}

// checkUpdates is the A/B update acceptance (issue 18) on the provisioned,
// serving node v (slot a, v1): refused bundles change nothing; v2
// installs into slot b, boots on trial, serves with the same keys and is
// committed by the gate; v3, whose daemon cannot start, is tried and
// rolled back by the firmware to v2, with the reason in the journal and
// the rollback in the metrics. It returns the running vm.
func checkUpdates(t testing.TB, v *vm, b bundles, dir, root, disk, vars, medium, key string, p ports, hc *http.Client, https string, keys []string, step func(string, ...any)) *vm {
	t.Helper()
	if s, ver := bootedSlot(t, v); s != "a" || ver != b.v1 {
		t.Fatalf("before the update the node runs slot %q version %q, want a %s", s, ver, b.v1)
	}
	before := slotStatus(t, v)
	// Refused bundles: each names why, and nothing changes.
	for _, bad := range []struct{ name, file, want string }{
		{"signed under another CA", b.otherCA, "signature verification failed"},
		{"truncated", b.cut, "refused"},
		{"for arm64", b.otherArch, `it is for "timenode-arm64", this appliance is "timenode-amd64"`},
	} {
		v.scp("/var/lib/ntp-admin/bad.raucb", bad.file)
		out, err := v.ssh("sudo timenodectl update install /var/lib/ntp-admin/bad.raucb 2>&1")
		if err == nil || !strings.Contains(out+err.Error(), bad.want) {
			t.Errorf("a bundle %s: err %v, want a refusal naming %q:\n%s", bad.name, err, bad.want, out)
		}
		if after := slotStatus(t, v); after != before {
			t.Errorf("a refused bundle (%s) changed the slots:\nbefore:\n%s\nafter:\n%s", bad.name, before, after)
		}
		v.must("rm -f /var/lib/ntp-admin/bad.raucb")
		step("update bundle %s refused: %s", bad.name, lastLine(out))
	}

	// v2: install, reboot into its trial, serve, commit.
	v.scp("/var/lib/ntp-admin/v2.raucb", b.good)
	t0 := time.Now()
	out := v.must("sudo timenodectl update install /var/lib/ntp-admin/v2.raucb 2>&1")
	install := time.Since(t0)
	v.must("rm -f /var/lib/ntp-admin/v2.raucb")
	st := slotStatus(t, v)
	if !strings.Contains(st, "primary: b") || !strings.Contains(st, "slot b: on trial") {
		t.Fatalf("after installing v2:\n%s\n%s", out, st)
	}
	step("v2 installed into slot b in %v; %s", install.Round(time.Second), firstLine(st))
	v.ssh("sudo systemctl reboot")
	if err := v.waitExit(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	v = boot(t, dir, disk, vars, medium, key, p, 3)
	v.waitSSH(10 * time.Minute)
	if s, ver := bootedSlot(t, v); s != "b" || ver != b.v2 {
		t.Fatalf("after the update the node runs slot %q version %q, want b %s", s, ver, b.v2)
	}
	pps := startPulses(t, v, root, dir, 3)
	if got := checkDevices(t, v, pps, hc, https); strings.Join(got, ",") != strings.Join(keys, ",") {
		t.Errorf("keys after the update %v, want %v (the state partition must survive)", got, keys)
	}
	waitServing(t, v, hc, https+"/health", 15*time.Minute)
	waitForOr(t, 5*time.Minute, "the gate committing slot b", func() bool {
		return strings.Contains(slotStatus(t, v), "slot b: committed")
	}, func() string {
		j, _ := v.ssh("sudo journalctl -b -u timenode-update-gate -u rauc --no-pager -n 40")
		return slotStatus(t, v) + "\n" + j
	})
	trial := time.Since(t0)
	j := v.must("sudo journalctl -b -u timenode-update-gate --no-pager -o cat")
	if !strings.Contains(j, "update committed: slot b ("+b.v2+")") {
		t.Errorf("the gate's journal lacks the commit:\n%s", j)
	}
	step("v2 booted on trial, served with keys %v and was committed %v after the reboot", keys, trial.Round(time.Second))
	pps.stop()

	// v3 cannot serve: its trial boots fail and the firmware falls back.
	v.scp("/var/lib/ntp-admin/v3.raucb", b.broken)
	v.must("sudo timenodectl update install /var/lib/ntp-admin/v3.raucb 2>&1")
	v.must("rm -f /var/lib/ntp-admin/v3.raucb")
	if st := slotStatus(t, v); !strings.Contains(st, "primary: a") {
		t.Fatalf("after installing v3:\n%s", st)
	}
	v.ssh("sudo systemctl reboot")
	if err := v.waitExit(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	n := 4
	for ; n < 8; n++ {
		v = boot(t, dir, disk, vars, medium, key, p, n)
		if !v.waitConsole(t.Context(), "rauc.slot=") {
			t.Fatal("no kernel command line on the console")
		}
		con, _ := os.ReadFile(v.console)
		if regexp.MustCompile(`Command line: .*rauc\.slot=b`).Match(con) {
			break // the firmware fell back
		}
		// A trial of v3: the gate reboots it.
		if err := v.waitExit(12 * time.Minute); err != nil {
			t.Fatalf("trial boot %d of v3 did not end: %v; console tail:\n%s", n-3, err, v.consoleTail(40))
		}
		step("v3 trial boot %d ended (the gate rebooted)", n-3)
	}
	v.waitSSH(10 * time.Minute)
	rollback := time.Since(t0)
	if s, ver := bootedSlot(t, v); s != "b" || ver != b.v2 {
		t.Fatalf("after v3's failed trials the node runs slot %q version %q, want b %s", s, ver, b.v2)
	}
	st = slotStatus(t, v)
	if !strings.Contains(st, "slot a: bad: tried") || !strings.Contains(st, "rollbacks: 1") {
		t.Errorf("status after the rollback:\n%s", st)
	}
	j = v.must("sudo journalctl -b -u timenode-update-gate --no-pager -o cat")
	if !strings.Contains(j, "update rolled back: slot a") || !strings.Contains(j, "timenoded.service") {
		t.Errorf("the journal does not say why slot a was rolled back:\n%s", j)
	}
	metrics := v.must(`exec 3<>/dev/tcp/127.0.0.1/9090; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3; cat <&3`)
	if !strings.Contains(metrics, "timenode_update_rollbacks_total 1") {
		t.Errorf("/metrics lacks timenode_update_rollbacks_total 1:\n%s", grepLines(metrics, "timenode_update_"))
	}
	step("v3 rolled back to v2 by the firmware after %d trial boots, %v; %s", n-4, rollback.Round(time.Second), firstLine(grepLines(j, "rolled back")))
	return v
}

// checkFactoryReset wipes /var through the documented command and proves
// the node is back at its first boot: timenoded skipped (not provisioned),
// new keys and CSRs made, the update records gone, the software kept.
func checkFactoryReset(t testing.TB, v *vm, dir, disk, vars, medium, key string, p ports, version string, step func(string, ...any)) *vm {
	t.Helper()
	oldCSR := v.must("sudo timenodectl provision csr attestation")
	v.ssh("sudo timenodectl factory-reset --yes")
	if err := v.waitExit(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	v = boot(t, dir, disk, vars, medium, key, p, 9)
	v.waitSSH(10 * time.Minute)
	j := v.must("sudo journalctl -b -u timenode-factory-reset --no-pager -o cat")
	if !strings.Contains(j, "factory reset: done") {
		t.Fatalf("the factory reset did not run:\n%s", j)
	}
	if _, ver := bootedSlot(t, v); ver != version {
		t.Errorf("after the reset the node runs %s, want %s (the software stays)", ver, version)
	}
	if !strings.Contains(v.must("sudo systemctl show -P ConditionResult timenoded.service"), "no") {
		t.Error("timenoded started after the factory reset: the node should be unprovisioned")
	}
	if out, _ := v.ssh("sudo test -e /var/lib/timenode/site && echo provisioned"); strings.Contains(out, "provisioned") {
		t.Error("the site material survived the factory reset")
	}
	waitFor(t, 5*time.Minute, "new CSRs from the first-boot unit", func() bool {
		out, err := v.ssh("sudo timenodectl provision csr attestation")
		return err == nil && strings.Contains(out, "CERTIFICATE REQUEST") && out != oldCSR
	})
	if st := slotStatus(t, v); !strings.Contains(st, "rollbacks: 0") {
		t.Errorf("the update records survived the factory reset:\n%s", st)
	}
	step("factory reset: /var made anew, timenoded waits for provisioning, new keys and CSRs, software %s kept", version)
	return v
}

// bundleSizes reports the bundles' sizes.
func bundleSizes(b bundles) string {
	var parts []string
	for _, f := range []string{b.good, b.broken} {
		if fi, err := os.Stat(f); err == nil {
			parts = append(parts, fmt.Sprintf("%s %d MiB", filepath.Base(f), fi.Size()>>20))
		}
	}
	return strings.Join(parts, ", ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
