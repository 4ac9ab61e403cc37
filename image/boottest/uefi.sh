#!/usr/bin/env bash
# image/boottest/uefi.sh [BUILD_DIR [ARCH]]: boots the shipped disk image
# itself, exactly as flashed (no -kernel, no overlay), with UEFI firmware
# under qemu TCG (amd64: OVMF on q35; arm64: AAVMF on the virt machine), and
# fails unless firmware -> systemd-boot (ESP) -> kernel and initrd ->
# read-only root found by PARTUUID, checked whole against its signed
# dm-verity root hash and mounted through dm-verity -> systemd reaches the
# login prompt on the serial console. It proves the image boots on its own; what runs inside it
# is checked by image/boottest/shipped (amd64). Needs the Debian packages ovmf and
# qemu-system-x86 (amd64) or qemu-efi-aarch64 and qemu-system-arm (arm64).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=${1:-$repo/build/image}
ARCH=${2:-amd64}
[ -d "$BUILD" ] && BUILD=$(cd "$BUILD" && pwd) # absolute: later steps change directory
TIMEOUT=${UEFI_TIMEOUT:-600}
fail() { echo "image-test (uefi, $ARCH): FAIL: $*" >&2; exit 1; }
case $ARCH in
amd64)
	code=/usr/share/OVMF/OVMF_CODE_4M.fd vars=/usr/share/OVMF/OVMF_VARS_4M.fd fwpkg=ovmf
	qemu=(qemu-system-x86_64 -accel tcg -machine q35 -cpu max) qemupkg=qemu-system-x86 ;;
arm64)
	code=/usr/share/AAVMF/AAVMF_CODE.fd vars=/usr/share/AAVMF/AAVMF_VARS.fd fwpkg=qemu-efi-aarch64
	qemu=(qemu-system-aarch64 -accel tcg -machine virt -cpu cortex-a72) qemupkg=qemu-system-arm ;;
*) fail "ARCH=$ARCH: amd64 or arm64" ;;
esac
img=$BUILD/timenode-$ARCH.img
[ -r "$code" ] && [ -r "$vars" ] || fail "$code missing: apt-get install $fwpkg"
[ -s "$img" ] || fail "$img missing: run \`make image\` (or image-arm64) first"
command -v "${qemu[0]}" >/dev/null || fail "${qemu[0]} not found (apt-get install $qemupkg)"

W=$BUILD/boottest-uefi
rm -rf "$W"; mkdir -p "$W"
cp "$vars" "$W/vars.fd"
console=$W/console.log; : >"$console"
qpid=
cleanup() { if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; sleep 1; kill -9 "$qpid" 2>/dev/null || true; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
"${qemu[@]}" -smp 2 -m 1024 \
	-drive if=pflash,format=raw,unit=0,readonly=on,file="$code" \
	-drive if=pflash,format=raw,unit=1,file="$W/vars.fd" \
	-drive file="$img",format=raw,if=virtio,snapshot=on \
	-nic none -serial "file:$console" -display none -monitor none -no-reboot >"$W/qemu.log" 2>&1 &
qpid=$!
while ! grep -q 'timenode login:' "$console"; do
	kill -0 "$qpid" 2>/dev/null || { tail -n 40 "$console" >&2; cat "$W/qemu.log" >&2; fail "qemu exited before the login prompt"; }
	if [ $(( $(date +%s) - start )) -ge "$TIMEOUT" ]; then
		tail -n 40 "$console" >&2; fail "no login prompt on the serial console within $TIMEOUT s"
	fi
	sleep 2
done
grep -aqi 'command line: .*root=PARTUUID=' "$console" || fail "the kernel was not started with the loader entry's command line"
grep -aq 'apparmor=1 security=apparmor' "$console" || fail "AppArmor is not on the booted kernel's command line"
grep -aq 'timenode-verity: slot a: root verified' "$console" || fail "the initramfs did not open slot a through dm-verity"
# As flashed, the node is not provisioned: timenoded must be skipped (its
# ConditionPathExists=), never failed and restarted.
if grep -aq 'Failed to start.*timenoded' "$console"; then
	fail "timenoded failed to start on the unprovisioned image: $(grep -a 'Failed to start.*timenoded' "$console" | head -n 1)"
fi
echo "image-test (uefi, $ARCH): PASS: firmware to login prompt in $(( $(date +%s) - start )) s"
