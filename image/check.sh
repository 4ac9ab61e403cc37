#!/usr/bin/env bash
# image/check.sh BUILD_DIR ARCH: inspects a built image without mounting it.
#
# Reads the GPT with sfdisk, copies each partition out with dd and reads the
# file systems with debugfs (ext4) and mtools (ESP). Fails, naming what is
# wrong, unless:
#   - the disk has the ESP, tn-root and tn-state partitions;
#   - the ESP holds the removable-media loader for ARCH, the kernel and initrd,
#     and a loader entry whose command line enables AppArmor;
#   - the root holds timenoded, timenodectl, systemd and apparmor_parser built
#     for ARCH (ELF e_machine), the units (timenoded.service
#     enabled), both AppArmor profiles, the
#     nftables ruleset, the system CA bundle and an fstab mounting /
#     read-only;
#   - the root's timenoded runs: `timenoded -h` under qemu-user for a foreign
#     ARCH (binfmt_misc), natively otherwise.
# Prints one line per check and a summary line for the build report.
#
# Host packages: fdisk, e2fsprogs, mtools (and qemu-user-static for arm64).
set -euo pipefail

fail() { echo "image/check.sh: FAIL: $*" >&2; exit 1; }
[ $# -eq 2 ] || fail "usage: image/check.sh BUILD_DIR ARCH"
BUILD=$1 ARCH=$2
img=$BUILD/timenode-$ARCH.img
[ -f "$img" ] || fail "$img not found (make image / make image-arm64)"
case $ARCH in
amd64) machine=3e00 loader=BOOTX64.EFI ;;
arm64) machine=b700 loader=BOOTAA64.EFI ;;
*) fail "ARCH=$ARCH: amd64 or arm64" ;;
esac
for t in sfdisk debugfs dumpe2fs mdir mtype dd od veritysetup openssl; do
	command -v "$t" >/dev/null 2>&1 || fail "$t not found (apt-get install fdisk e2fsprogs mtools cryptsetup-bin openssl)"
done

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

sfdisk --dump "$img" >"$W/table" || fail "$img has no readable partition table"
# partline NAME: the partition table line of the partition named NAME.
partline() { grep -E "name=\"?$1\"?(,|$)" "$W/table" || fail "no partition named $1 in $img"; }
# part NAME OUT: copy the partition named NAME out of the image.
part() {
	local line start size
	line=$(partline "$1")
	start=$(sed -E 's/.*start= *([0-9]+).*/\1/' <<<"$line")
	size=$(sed -E 's/.*size= *([0-9]+).*/\1/' <<<"$line")
	dd if="$img" of="$2" bs=512 skip="$start" count="$size" status=none
}
part esp "$W/esp"
part tn-root-a "$W/root"
partline tn-root-b >/dev/null # empty until the first update
partline tn-state >/dev/null # made empty by the build: only its presence is checked
echo "check: partitions esp, tn-root-a, tn-root-b, tn-state"

# ESP.
mdir -i "$W/esp" "::/EFI/BOOT/$loader" >/dev/null 2>&1 || fail "ESP has no /EFI/BOOT/$loader"
for f in /timenode/a/vmlinuz /timenode/a/initrd.img; do
	mdir -i "$W/esp" "::$f" >/dev/null 2>&1 || fail "ESP has no $f"
done
entry=$(mtype -i "$W/esp" ::/loader/entries/timenode-a.conf) || fail "ESP has no loader entry for slot a"
loaderconf=$(mtype -i "$W/esp" ::/loader/loader.conf) || fail "ESP has no loader.conf"
for w in "editor no" "auto-firmware no" "auto-entries no"; do
	grep -qx "$w" <<<"$loaderconf" || fail "loader.conf lacks \"$w\": a key on a console could edit the kernel command line or leave the appliance's entry"
done
grep -q 'apparmor=1 security=apparmor' <<<"$entry" || fail "loader entry does not enable AppArmor: $entry"
grep -Eq '^options root=PARTUUID=[^ ]+ ro .* rauc\.slot=a$' <<<"$entry" || fail "slot a's entry does not boot its root read-only as RAUC's slot a: $entry"
grep -qx 'default timenode-\*' <<<"$loaderconf" || fail "loader.conf's default is not the pattern timenode-*: a slot whose trial ran out would still boot"
echo "check: ESP has $loader, kernel, initrd, AppArmor on the command line"

# Root file system.
rootcat() { debugfs -R "cat $1" "$W/root" 2>/dev/null; }
exists() { debugfs -R "stat $1" "$W/root" 2>&1 | grep -q '^Inode:'; }
elf_machine() { # elf_machine PATH: e_machine of the (symlink-resolved) file, as hex bytes
	local p=$1 target
	for _ in 1 2 3 4 5; do
		target=$(debugfs -R "stat $p" "$W/root" 2>/dev/null | sed -n 's/^Fast link dest: "\(.*\)"$/\1/p')
		[ -n "$target" ] || break
		case $target in /*) p=$target ;; *) p=$(dirname "$p")/$target ;; esac
	done
	# od stops after 20 bytes and debugfs dies of SIGPIPE: not a failure.
	{ rootcat "$p" || true; } | od -An -tx1 -j18 -N2 | tr -d ' \n'
}
for f in /usr/sbin/timenoded /usr/bin/timenodectl /usr/lib/systemd/systemd /usr/sbin/apparmor_parser /usr/sbin/nft; do
	m=$(elf_machine "$f")
	[ "$m" = "$machine" ] || fail "$f: ELF machine ${m:-missing}, want $machine ($ARCH)"
done
echo "check: timenoded, timenodectl, systemd, apparmor_parser, nft are $ARCH"
for f in /usr/lib/systemd/system/timenoded.service /usr/lib/systemd/system/timenode-firstboot.service \
	/etc/apparmor.d/usr.sbin.timenoded /etc/apparmor.d/timenode-refresh /etc/nftables.conf \
	/etc/systemd/system/multi-user.target.wants/timenoded.service \
	/etc/systemd/system/multi-user.target.wants/ssh.service \
	/etc/systemd/system/multi-user.target.wants/timenode-sshd-keygen.service \
	/usr/lib/systemd/system/ssh.service.d/timenode.conf \
	/usr/lib/systemd/system/nftables.service.d/timenode.conf \
	/usr/lib/systemd/system/timenode-media@.service \
	/usr/lib/udev/rules.d/61-timenode-media.rules \
	/etc/ssh/sshd_config.d/10-timenode.conf /etc/sudoers.d/timenode-admin /etc/timenode/appliance.env \
	/etc/systemd/system/sysinit.target.wants/systemd-time-wait-sync.service \
	/usr/lib/systemd/system/systemd-time-wait-sync.service.d/timenode.conf; do
	exists "$f" || fail "root has no $f"
done
! rootcat /etc/fstab | grep -Eq '^[^#]+ +/ ' || fail "fstab mounts /: the root is the slot the loader entry names, read-only"
roots=$(rootcat /etc/ssl/certs/ca-certificates.crt | grep -c 'BEGIN CERTIFICATE' || true)
[ "$roots" -ge 100 ] || fail "the root has ${roots:-no} system CA certificates in /etc/ssl/certs/ca-certificates.crt: --witness-nts without a site witness-ca.pem trusts them (ca-certificates)"
rootcat /etc/fstab | grep -Eq '^PARTLABEL=tn-state +/var ' || fail "fstab does not mount the state partition by its name (an update's root must find it)"
for f in /etc/rauc/system.conf /etc/rauc/update-ca.pem /usr/lib/timenode/rauc-bootloader /usr/bin/rauc \
	/usr/lib/timenode/boot/vmlinuz /usr/lib/timenode/boot/initrd.img /usr/lib/timenode/boot/cmdline \
	/etc/systemd/system/multi-user.target.wants/timenode-update-gate.service \
	/etc/systemd/system/local-fs.target.wants/timenode-factory-reset.service \
	/usr/lib/timenode/factory/var/lib/dpkg/status; do
	exists "$f" || fail "root has no $f (A/B updates)"
done
rootcat /etc/rauc/system.conf | grep -qx "compatible=timenode-$ARCH" || fail "RAUC's compatible is not timenode-$ARCH"
! rootcat /etc/rauc/update-ca.pem | grep -q "PRIVATE KEY" || fail "the update CA file holds a private key"
for k in ssh_host_ed25519_key ssh_host_rsa_key ssh_host_ecdsa_key; do
	! exists "/etc/ssh/$k" || fail "the image ships /etc/ssh/$k: every appliance must make its own host key"
done
rootcat /etc/shadow | grep -q '^ntp-admin:\*:' || fail "ntp-admin must have no password (\"*\" in /etc/shadow)"
rootcat /etc/shadow | grep -Eq '^root:[*!]' || fail "root must have no password"
rootcat /etc/group | grep -Eq '^systemd-journal:.*[:,]timenode-denials(,|$)' || fail "timenode-denials (the AppArmor denial counter) is not in systemd-journal"
rootcat /etc/timenode/appliance.env | grep -qx 'TIMENODE_ALLOW_CLOCK_STEER=appliance' || fail "appliance.env does not opt in to steering"
echo "check: units (timenoded, sshd, the wait for lock and the update gate enabled), sshd key-only, no shipped host keys, AppArmor profiles, nftables ruleset, $roots system CAs, A/B slots with RAUC and the update CA only"

# Verified root: slot a's descriptor on the ESP is signed under the update
# CA the image holds (as its initramfs checks it), slot a matches its root
# hash, and one flipped byte in it does not.
for f in verity.env verity.env.p7s; do
	mcopy -i "$W/esp" "::/timenode/a/$f" "$W/$f" 2>/dev/null || fail "ESP has no /timenode/a/$f (slot a's dm-verity descriptor)"
done
rootcat /etc/rauc/update-ca.pem >"$W/update-ca.pem"
out=$(openssl cms -verify -binary -inform DER -in "$W/verity.env.p7s" -content "$W/verity.env" \
	-CAfile "$W/update-ca.pem" -purpose any -no_check_time -out /dev/null 2>&1) ||
	fail "slot a's verity descriptor is not signed under the image's update CA: $out"
hash=$(sed -n 's/^ROOT_HASH=//p' "$W/verity.env") off=$(sed -n 's/^HASH_OFFSET=//p' "$W/verity.env")
[[ $hash =~ ^[0-9a-f]{64}$ && $off =~ ^[0-9]+$ ]] || fail "slot a's verity descriptor is malformed: $(cat "$W/verity.env")"
out=$(veritysetup verify "$W/root" "$W/root" "$hash" --hash-offset="$off" 2>&1) || fail "slot a does not match its signed root hash: $out"
dumpe2fs -h "$W/root" 2>/dev/null | grep -Eq '^Filesystem features:.* read-only( |$)' ||
	fail "slot a's ext4 lacks the read-only feature: a writable mount (RAUC's, for its hook) would change what the root hash covers"
flip=$(( off / 2 / 4096 * 4096 + 123 ))
byte=$(od -An -tu1 -j "$flip" -N1 "$W/root" | tr -d ' ')
printf "\\$(printf %03o $(( 255 - byte )))" | dd of="$W/root" bs=1 seek="$flip" conv=notrunc status=none
! veritysetup verify "$W/root" "$W/root" "$hash" --hash-offset="$off" >/dev/null 2>&1 || fail "slot a with byte $flip flipped still verifies"
printf "\\$(printf %03o "$byte")" | dd of="$W/root" bs=1 seek="$flip" conv=notrunc status=none
for f in /etc/initramfs-tools/hooks/timenode-verity /etc/initramfs-tools/hooks/timenode-modules /etc/initramfs-tools/scripts/local-top/timenode-verity /usr/sbin/veritysetup; do
	exists "$f" || fail "root has no $f (the initramfs opens the root through dm-verity)"
done
echo "check: slot a (ext4, read-only feature) matches its root hash ${hash:0:16}..., signed under the update CA; a flipped byte fails"

# The image's own daemon runs.
rootcat /usr/sbin/timenoded >"$W/timenoded"
chmod 755 "$W/timenoded"
"$W/timenoded" -h >"$W/help.txt" 2>&1 || fail "the image's timenoded -h exited $?: $(head -n 3 "$W/help.txt")"
grep -q -- '-production' "$W/help.txt" || fail "the image's timenoded -h printed no usage: $(head -n 3 "$W/help.txt")"
# One version: the daemon's --version and the image's os-release agree.
"$W/timenoded" --version >"$W/version.txt" 2>&1 || fail "the image's timenoded --version exited $?"
binver=$(awk '{print $2}' "$W/version.txt")
osrver=$(rootcat /usr/lib/os-release | sed -n 's/^IMAGE_VERSION=//p')
[ -n "$binver" ] && [ "$binver" = "$osrver" ] || fail "timenoded --version says '$binver', os-release IMAGE_VERSION '$osrver'"
echo "check: the image's timenoded runs, version $binver as in os-release ($ARCH$( [ "$machine" = 3e00 ] || echo ', under qemu-user'))"
echo "check_$ARCH=PASS image_bytes=$(stat -c %s "$img") image_allocated_kib=$(du -k "$img" | cut -f1)"
