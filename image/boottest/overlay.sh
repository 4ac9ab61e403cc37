#!/bin/sh
# overlay.sh ROOT VAR: run by `image/build.sh assemble` on the boot-test copy
# of the image tree after image/boottest/overlay/ has been copied over it.
# Enables the boot-test units (what `systemctl enable` would link).
set -eu
root=$1
wants=$root/etc/systemd/system/multi-user.target.wants
mkdir -p "$wants"
for u in timenode-boottest-clock.service timenode-boottest-report.service timenode-boottest-provision.service; do
	[ -f "$root/etc/systemd/system/$u" ] || { echo "overlay.sh: $u missing" >&2; exit 1; }
	ln -sf "/etc/systemd/system/$u" "$wants/$u"
done
[ -x "$root/usr/lib/timenode-boottest/clock-qemutest.test" ] || {
	echo "overlay.sh: clock-qemutest.test missing (run.sh builds it)" >&2; exit 1; }
