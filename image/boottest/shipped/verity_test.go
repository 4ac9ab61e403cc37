//go:build linux

package shipped

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkRootVerified: the booted root is the slot mapped through dm-verity by
// the initramfs, not the partition itself, and the kernel log says how
// long the initramfs took to read the whole slot against its signed root
// hash.
func checkRootVerified(t testing.TB, v *vm, slot string) string {
	t.Helper()
	if src := strings.TrimSpace(v.must("findmnt -no SOURCE /")); src != "/dev/mapper/tn-root" {
		t.Errorf("the root is mounted from %q, want /dev/mapper/tn-root (dm-verity)", src)
	}
	// The device-mapper device named tn-root, found through sysfs (the
	// initramfs made /dev/mapper/tn-root itself, not as a udev link).
	if uuid := v.must(`d=$(grep -l '^tn-root$' /sys/block/dm-*/dm/name) && cat "${d%/name}/uuid"`); !strings.HasPrefix(uuid, "CRYPT-VERITY-") {
		t.Errorf("/dev/mapper/tn-root is not a dm-verity mapping: dm uuid %q", uuid)
	}
	klog := v.must("sudo journalctl -k -b --no-pager -o short-monotonic | grep 'timenode-verity:' || true")
	start, end := kmsgTime(klog, "verifying the whole root"), kmsgTime(klog, "root verified")
	if start < 0 || end < 0 || !strings.Contains(klog, "slot "+slot+": root verified") {
		t.Errorf("the kernel log lacks the initramfs's verification of slot %s:\n%s", slot, klog)
		return ""
	}
	return fmt.Sprintf("slot %s verified in %.1f s", slot, end-start)
}

// monotonicStamp is the timestamp journalctl -o short-monotonic starts a
// line with.
var monotonicStamp = regexp.MustCompile(`^\[\s*([0-9.]+)\]`)

// kmsgTime is the monotonic time, in seconds, of the first journal line
// (short-monotonic) holding marker, or -1.
func kmsgTime(log, marker string) float64 {
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, marker) {
			continue
		}
		if m := monotonicStamp.FindStringSubmatch(l); m != nil {
			if f, err := strconv.ParseFloat(m[1], 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// checkFlippedByteRefused is the verified root's acceptance (issue 18):
// with the node powered off, one byte of the active slot's root file
// system is flipped on the disk; the next boot's initramfs finds it
// before the root is mounted, marks the slot bad and, since the other
// slot is bad too (v3's trial failed), powers off instead of serving:
// nothing on that disk can be vouched for.
func checkFlippedByteRefused(t testing.TB, v *vm, img, dir, disk, vars, medium, key string, p ports, step func(string, ...any)) {
	t.Helper()
	slot, _ := bootedSlot(t, v)
	v.ssh("sudo systemctl poweroff")
	if err := v.waitExit(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	// 100 MiB into the slot: inside the root file system (about 480 MiB),
	// far from its hash tree.
	off := partitionStart(t, img, "tn-root-"+slot) + 100<<20 + 123
	old := diskByte(t, disk, off)
	run(t, "qemu-io", "-f", "qcow2", "-c", fmt.Sprintf("write -P 0x%02x %d 1", ^old, off), disk)
	if got := diskByte(t, disk, off); got != ^old {
		t.Fatalf("byte %d of the disk is %#x after writing %#x", off, got, ^old)
	}
	t0 := time.Now()
	v = boot(t, dir, disk, vars, medium, key, p, 10)
	if err := v.waitExit(15 * time.Minute); err != nil {
		t.Fatalf("the node with a flipped byte in slot %s did not stop: %v; console tail:\n%s", slot, err, v.consoleTail(40))
	}
	con, _ := os.ReadFile(v.console)
	for _, want := range []string{
		"timenode-verity: slot " + slot + " refused: dm-verity",
		"timenode-verity: slot " + slot + " marked bad",
		"timenode-verity: no intact root slot left: powering off",
	} {
		if !strings.Contains(string(con), want) {
			t.Errorf("the console lacks %q; tail:\n%s", want, v.consoleTail(40))
		}
	}
	for _, never := range []string{"Reached target", "login:"} {
		if strings.Contains(string(con), never) {
			t.Errorf("the corrupt slot got as far as %q", never)
		}
	}
	step("one flipped byte in slot %s (disk offset %d): refused by the initramfs before the root was mounted, slot marked bad, no intact slot left, powered off after %v",
		slot, off, time.Since(t0).Round(time.Second))
}

// partitionStart is the byte offset of the GPT partition named name in
// the raw image.
func partitionStart(t testing.TB, img, name string) int64 {
	t.Helper()
	var table struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Name  string `json:"name"`
				Start int64  `json:"start"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(run(t, "sfdisk", "--json", img)), &table); err != nil {
		t.Fatalf("sfdisk --json %s: %v", img, err)
	}
	ss := table.PartitionTable.SectorSize
	if ss == 0 {
		ss = 512
	}
	for _, pt := range table.PartitionTable.Partitions {
		if pt.Name == name {
			return pt.Start * ss
		}
	}
	t.Fatalf("no partition %s in %s", name, img)
	return 0
}

// qemuIOByte is the first byte of a qemu-io "read -v" dump.
var qemuIOByte = regexp.MustCompile(`(?m)^[0-9a-f]+:\s+([0-9a-f]{2})\b`)

// diskByte reads one byte of the guest's disk through qemu-io.
func diskByte(t testing.TB, disk string, off int64) byte {
	t.Helper()
	out := run(t, "qemu-io", "-f", "qcow2", "-c", fmt.Sprintf("read -v %d 1", off), disk)
	m := qemuIOByte.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("qemu-io read -v printed no byte:\n%s", out)
	}
	b, _ := strconv.ParseUint(m[1], 16, 8)
	return byte(b)
}
