package slots_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// script is the initramfs script that opens a root slot through dm-verity.
const script = "../rootfs/etc/initramfs-tools/scripts/local-top/timenode-verity"

// TestInitramfsVerity runs the initramfs's dm-verity script on this
// machine against a fake root (TIMENODE_VERITY_TESTROOT): the real
// openssl and veritysetup check a real signed slot image made by
// image/bundle.sh --verity; only the device boundary is faked (mount,
// the dm mapping, reboot and poweroff record what they were asked).
// An intact slot becomes the root; a slot with a flipped byte, a
// descriptor signed under another CA or none at all is marked bad on the
// ESP, and the machine reboots into the other slot when that one is not
// bad, or powers off when it is.
func TestInitramfsVerity(t *testing.T) {
	if _, err := os.Stat("/scripts/functions"); err == nil {
		t.Skip("this machine looks like an initramfs: the script would use its real paths")
	}
	tools, path := needTools(t, [2]string{"veritysetup", "cryptsetup-bin"}, [2]string{"mkfs.ext4", "e2fsprogs"}, [2]string{"tune2fs", "e2fsprogs"}, [2]string{"openssl", "openssl"})
	sh := testbin.NeedTool(t, "sh", "dash")
	dir := t.TempDir()
	ca, cert, key := pki(t, dir, "update")
	other, ocert, okey := pki(t, dir, "other")
	slot, desc, hash := verifiedSlot(t, tools, path, dir, "good", ca, cert, key)
	_, otherDesc, _ := verifiedSlot(t, tools, path, dir, "rogue", other, ocert, okey)
	corrupt := filepath.Join(dir, "corrupt.img")
	b, err := os.ReadFile(slot)
	if err != nil {
		t.Fatal(err)
	}
	b[5<<20+77] ^= 0xff
	os.WriteFile(corrupt, b, 0o644)

	// The device boundary: the ESP's files are in espdisk, which mount
	// moves onto the mount point and umount moves back (so the script
	// sees them only while it has the ESP mounted, and read-only unless
	// it mounted or remounted it rw); the mapping is a file; reboot and
	// poweroff record and end the script as the real ones would.
	stubs := filepath.Join(dir, "stubs")
	os.MkdirAll(stubs, 0o755)
	for name, body := range map[string]string{
		"mount": `R=$TIMENODE_VERITY_TESTROOT; echo "mount $*" >>"$R/actions"; for last; do :; done
case " $* " in
*remount,rw*) [ -d "$last/loader" ] || exit 32; chmod -R u+w "$last"; exit 0 ;;
esac
[ -d "$R/espdisk" ] || exit 32
rmdir "$last" && mv "$R/espdisk" "$last" || exit 32
case " $* " in *" -o ro,"*) chmod -R a-w "$last" ;; esac`,
		"umount":      `R=$TIMENODE_VERITY_TESTROOT; for last; do :; done; [ ! -e "$R/espdisk" ] || exit 1; chmod -R u+w "$last"; mv "$last" "$R/espdisk" && mkdir "$last"`,
		"sync":        `:`,
		"sleep":       `:`,
		"reboot":      `echo "reboot $*" >>"$TIMENODE_VERITY_TESTROOT/actions"; kill -9 $PPID`,
		"poweroff":    `echo "poweroff $*" >>"$TIMENODE_VERITY_TESTROOT/actions"; kill -9 $PPID`,
		"veritysetup": `if [ "$1" = open ]; then echo "veritysetup $*" >>"$TIMENODE_VERITY_TESTROOT/actions"; : >"$TIMENODE_VERITY_TESTROOT/dev/mapper/tn-root"; exit 0; fi; exec ` + tools["veritysetup"] + ` "$@"`,
	} {
		os.WriteFile(filepath.Join(stubs, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755)
	}
	stubPath := "PATH=" + stubs + ":" + strings.TrimPrefix(path, "PATH=")

	for _, tc := range []struct {
		name        string
		image, desc string   // the slot's partition and its descriptor's directory ("" none)
		entries     []string // loader entries on the ESP before the boot
		action      string   // what ends the script: veritysetup (mapped), reboot, poweroff
		after       []string // loader entries after
		log         string   // in the kernel log
		why         string   // in the refusal left on the ESP
	}{
		{"intact", slot, desc, []string{"timenode-a.conf", "timenode-b+0-2.conf"}, "veritysetup", []string{"timenode-a.conf", "timenode-b+0-2.conf"}, "slot a: root verified (" + hash + ")", ""},
		{"intact on trial", slot, desc, []string{"timenode-a+1-1.conf", "timenode-b.conf"}, "veritysetup", []string{"timenode-a+1-1.conf", "timenode-b.conf"}, "root verified", ""},
		{"flipped byte, other slot good", corrupt, desc, []string{"timenode-a.conf", "timenode-b.conf"}, "reboot", []string{"timenode-a+0.conf", "timenode-b.conf"}, "slot a refused: dm-verity", "dm-verity: Verification failed at position"},
		{"flipped byte on trial, other slot good", corrupt, desc, []string{"timenode-a+1-1.conf", "timenode-b.conf"}, "reboot", []string{"timenode-a+0.conf", "timenode-b.conf"}, "rebooting into the other slot (timenode-b.conf)", "dm-verity: Verification failed at position"},
		{"flipped byte, other slot bad", corrupt, desc, []string{"timenode-a.conf", "timenode-b+0-2.conf"}, "poweroff", []string{"timenode-a+0.conf", "timenode-b+0-2.conf"}, "no intact root slot left: powering off", "dm-verity: Verification failed at position"},
		{"flipped byte, no other slot", corrupt, desc, []string{"timenode-a.conf"}, "poweroff", []string{"timenode-a+0.conf"}, "slot a marked bad", "dm-verity: Verification failed at position"},
		{"descriptor signed under another CA", slot, otherDesc, []string{"timenode-a.conf", "timenode-b.conf"}, "reboot", []string{"timenode-a+0.conf", "timenode-b.conf"}, "does not verify against the update CA", "does not verify against the update CA"},
		{"no descriptor", slot, "", []string{"timenode-a.conf", "timenode-b.conf"}, "reboot", []string{"timenode-a+0.conf", "timenode-b.conf"}, "no verity descriptor", "no verity descriptor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := t.TempDir()
			for _, d := range []string{"proc", "dev/disk/by-partuuid", "dev/disk/by-partlabel", "dev/mapper", "conf", "etc/timenode", "espdisk/loader/entries", "espdisk/timenode/a"} {
				os.MkdirAll(filepath.Join(r, d), 0o755)
			}
			os.WriteFile(filepath.Join(r, "proc/cmdline"), []byte("root=PARTUUID=0a1b2c3d-0000-4000-8000-000000000001 ro rootwait panic=10 rauc.slot=a\n"), 0o644)
			dev := filepath.Join(r, "dev/disk/by-partuuid/0a1b2c3d-0000-4000-8000-000000000001")
			os.Symlink(tc.image, dev)
			os.WriteFile(filepath.Join(r, "dev/disk/by-partlabel/esp"), nil, 0o644)
			copyFile(t, ca, filepath.Join(r, "etc/timenode/update-ca.pem"))
			esp := filepath.Join(r, "espdisk")
			if tc.desc != "" {
				for _, f := range []string{"verity.env", "verity.env.p7s"} {
					copyFile(t, filepath.Join(tc.desc, f), filepath.Join(esp, "timenode/a", f))
				}
			}
			for _, e := range tc.entries {
				os.WriteFile(filepath.Join(esp, "loader/entries", e), []byte("title timenode\n"), 0o644)
			}

			cmd := exec.Command(sh, script)
			cmd.Env = append(os.Environ(), "TIMENODE_VERITY_TESTROOT="+r, stubPath)
			out, runErr := cmd.CombinedOutput()
			actions, _ := os.ReadFile(filepath.Join(r, "actions"))
			klog, _ := os.ReadFile(filepath.Join(r, "dev/kmsg"))
			param, _ := os.ReadFile(filepath.Join(r, "conf/param.conf"))
			if !strings.Contains(string(klog), tc.log) {
				t.Errorf("kernel log lacks %q:\n%s\noutput: %s", tc.log, klog, out)
			}
			last := strings.Fields(lastLine(string(actions)))
			if len(last) == 0 || last[0] != tc.action {
				t.Fatalf("the script ended with %q (exit %v), want %s; actions:\n%s\nkernel log:\n%s\noutput: %s", last, runErr, tc.action, actions, klog, out)
			}
			switch tc.action {
			case "veritysetup":
				if runErr != nil {
					t.Errorf("the script failed on an intact slot: %v\n%s", runErr, out)
				}
				want := "veritysetup open " + dev + " tn-root " + dev + " " + hash + " --hash-offset="
				if !strings.HasPrefix(lastLine(string(actions)), want) || !strings.HasSuffix(lastLine(string(actions)), " --restart-on-corruption") {
					t.Errorf("mapped with %q, want %q... --restart-on-corruption", lastLine(string(actions)), want)
				}
				if string(param) != "ROOT=/dev/mapper/tn-root\n" {
					t.Errorf("param.conf %q: the root is not the verity mapping", param)
				}
			default:
				if len(last) < 2 || last[1] != "-f" {
					t.Errorf("%s without -f: %q", tc.action, last)
				}
				if len(param) != 0 || strings.Contains(string(actions), "veritysetup open") {
					t.Errorf("a refused slot was mapped or made the root: param.conf %q, actions:\n%s", param, actions)
				}
			}
			if _, err := os.Stat(esp); err != nil {
				t.Fatalf("the script left the ESP mounted: %v", err)
			}
			refused, _ := os.ReadFile(filepath.Join(esp, "timenode/a/refused"))
			if tc.action == "veritysetup" && len(refused) != 0 {
				t.Errorf("an intact slot left a refusal on the ESP: %q", refused)
			}
			if tc.action != "veritysetup" && !strings.Contains(string(refused), tc.why) {
				t.Errorf("the ESP's refusal for the gate %q lacks %q", refused, tc.why)
			}
			des, _ := os.ReadDir(filepath.Join(esp, "loader/entries"))
			var got []string
			for _, de := range des {
				got = append(got, de.Name())
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tc.after, " ") {
				t.Errorf("loader entries after the boot %v, want %v", got, tc.after)
			}
		})
	}
}

// verifiedSlot makes a slot image and its signed descriptor with
// image/bundle.sh --verity from a small ext4, signed by cert and key
// under ca; it returns the image, the descriptor's directory and the
// root hash.
func verifiedSlot(t *testing.T, tools map[string]string, path, dir, name, ca, cert, key string) (img, desc, hash string) {
	t.Helper()
	tree := filepath.Join(dir, name+"-tree")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "junk"), incompressible(1<<20), 0o644)
	root := filepath.Join(dir, name+".ext4")
	rootFS(t, tools, tree, root, 4096, true)
	img, desc = filepath.Join(dir, name+".img"), filepath.Join(dir, name+"-desc")
	cmd := exec.Command("../bundle.sh", "--verity", root, img, desc)
	cmd.Env = append(os.Environ(), path, "UPDATE_CA="+ca, "UPDATE_CERT="+cert, "UPDATE_KEY="+key)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bundle.sh --verity: %v\n%s", err, out)
	}
	env, err := os.ReadFile(filepath.Join(desc, "verity.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(env), "\n") {
		if v, ok := strings.CutPrefix(l, "ROOT_HASH="); ok {
			hash = v
		}
	}
	if len(hash) != 64 {
		t.Fatalf("no root hash in verity.env:\n%s", env)
	}
	return img, desc, hash
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
