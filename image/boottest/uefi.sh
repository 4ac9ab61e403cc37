#!/usr/bin/env bash
# image/boottest/uefi.sh [BUILD_DIR]: boots the shipped disk image itself,
# exactly as flashed (no -kernel, no overlay), with UEFI firmware (OVMF) under
# qemu TCG, and fails unless firmware -> systemd-boot (ESP) -> kernel and
# initrd -> read-only root found by PARTUUID -> systemd reaches the login
# prompt on the serial console. It proves the image boots on its own; what
# runs inside it is checked by run.sh. Needs the Debian package ovmf.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=${1:-$repo/build/image}
[ -d "$BUILD" ] && BUILD=$(cd "$BUILD" && pwd) # absolute: later steps change directory
TIMEOUT=${UEFI_TIMEOUT:-600}
code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars=/usr/share/OVMF/OVMF_VARS_4M.fd
fail() { echo "image-test (uefi): FAIL: $*" >&2; exit 1; }
[ -r "$code" ] && [ -r "$vars" ] || fail "$code missing: apt-get install ovmf"
[ -s "$BUILD/timenode-amd64.img" ] || fail "$BUILD/timenode-amd64.img missing: run \`make image\` first"
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"

W=$BUILD/boottest-uefi
rm -rf "$W"; mkdir -p "$W"
cp "$vars" "$W/vars.fd"
console=$W/console.log; : >"$console"
qpid=
cleanup() { if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; sleep 1; kill -9 "$qpid" 2>/dev/null || true; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
qemu-system-x86_64 -accel tcg -machine q35 -cpu max -smp 2 -m 1024 \
	-drive if=pflash,format=raw,unit=0,readonly=on,file="$code" \
	-drive if=pflash,format=raw,unit=1,file="$W/vars.fd" \
	-drive file="$BUILD/timenode-amd64.img",format=raw,if=virtio,snapshot=on \
	-nic none -serial "file:$console" -display none -monitor none -no-reboot >"$W/qemu.log" 2>&1 &
qpid=$!
while ! grep -q 'timenode login:' "$console"; do
	kill -0 "$qpid" 2>/dev/null || { tail -n 40 "$console" >&2; cat "$W/qemu.log" >&2; fail "qemu exited before the login prompt"; }
	if [ $(( $(date +%s) - start )) -ge "$TIMEOUT" ]; then
		tail -n 40 "$console" >&2; fail "no login prompt on ttyS0 within $TIMEOUT s"
	fi
	sleep 2
done
grep -aq 'Command line: .*root=PARTUUID=' "$console" || fail "the kernel was not started with the loader entry's command line"
grep -aq 'apparmor=1 security=apparmor' "$console" || fail "AppArmor is not on the booted kernel's command line"
echo "image-test (uefi): PASS: firmware to login prompt in $(( $(date +%s) - start )) s"
