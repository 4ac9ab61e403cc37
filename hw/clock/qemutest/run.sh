#!/bin/sh
# run.sh: the qemu guest test of the kernel clock adapter, behind
# `make qemu-clock-test`. It fetches Debian's kernel into .cache (once), then
# runs TestQEMUClockSteering, which builds this package's tests as a static
# /init, boots them under qemu (TCG, no network) and fails unless the guest
# reports PASS. Needs qemu-system-x86, apt and dpkg, and the Go toolchain.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
	echo "run.sh: qemu-system-x86_64 not found: apt-get install qemu-system-x86" >&2
	exit 1
fi
"$here/fetch-kernel.sh" "$here/.cache"
cd "$here"
TIMENODE_QEMU_TEST=1 exec go test -count=1 -timeout 15m -v -run '^TestQEMUClockSteering$' .
