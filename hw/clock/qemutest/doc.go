// Package qemutest tests the kernel clock adapter (clock.Kernel) for real,
// inside a throwaway qemu guest, because the host's clock must never change.
//
// The package's test binary plays two roles. On the host,
// TestQEMUClockSteering fetches a Debian kernel (fetch-kernel.sh: the
// linux-image-amd64 package, downloaded and extracted, never installed),
// builds this same test binary statically (CGO_ENABLED=0 go test -c), packs
// it as /init into a gzip newc initramfs and boots it with
// qemu-system-x86_64 under TCG, with no network. In the guest the binary is
// PID 1: TestMain mounts /proc and /dev, sets clock.SteerEnv=guest (honoured
// only by PID 1 on a kernel booted with clock.GuestCmdlineFlag), runs the
// TestGuest* tests, which steer the guest's clock and check the kernel's
// answers, writes a PASS or FAIL marker to the second serial port and powers
// the guest off. The host test passes only if the marker says PASS.
//
// The host test runs when CI=true or TIMENODE_QEMU_TEST=1 (run.sh, behind
// `make qemu-clock-test`, sets the latter) and takes a few minutes under TCG.
package qemutest
