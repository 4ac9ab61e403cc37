#!/usr/bin/env bash
# image/build.sh: builds the flashable timenode appliance disk image (`make image`).
#
#   image/build.sh [BUILD_DIR]          full build (default BUILD_DIR: build/image)
#   ARCH=arm64 image/build.sh BUILD_DIR the same image for arm64 UEFI boards:
#                                       debootstrap --foreign, second stage and
#                                       apt in the chroot under qemu-user-static
#                                       (binfmt_misc, mounted and registered here
#                                       when missing)
#
# Full build, all inside BUILD_DIR (nothing cached between runs: the tree is
# made from scratch every time):
#   1. timenoded and timenodectl, static, for ARCH (BUILD_DIR/bin-ARCH);
#   2. Debian bookworm, debootstrap --variant=minbase, from the mirror apt on
#      this machine already uses (or $MIRROR), then in a chroot: kernel,
#      systemd, udev, AppArmor, nftables, systemd-boot's EFI binary;
#   3. kernel modules trimmed to what an appliance can use, zstd initramfs;
#   4. the timenode binaries, units, udev rule, AppArmor profiles, nftables
#      ruleset (and $SITE_NFT as /etc/timenode/nftables.d/site.nft, if set);
#   5. a GPT disk: ESP (systemd-boot + each slot's kernel + initrd + signed
#      dm-verity descriptor), two root slots tn-root-a and tn-root-b (A/B
#      updates with RAUC: a holds the read-only ext4 root with its dm-verity
#      hash tree appended, b is empty until the first update), an ext4
#      state partition mounted on /var (DynamicUser state lives in
#      /var/lib/private/timenode, journal is volatile).
# No loop devices and no mounts except proc/sys/dev(/pts) bind mounts into the
# chroot, always undone by an EXIT trap.
#
# Outputs: BUILD_DIR/timenode-$ARCH.img (raw, dd it to the appliance's disk),
# BUILD_DIR/root.ext4 (the root slot's file system, what image/bundle.sh
# signs into an update bundle), BUILD_DIR/version (VERSION, ARCH),
# BUILD_DIR/vmlinuz, BUILD_DIR/initrd.img, BUILD_DIR/cmdline (the kernel command
# line the loader entry uses), BUILD_DIR/partuuids, BUILD_DIR/build-report.txt.
#
# The update CA the appliance trusts for bundles: $UPDATE_CA (PEM), else the
# development CA image/bundle.sh keeps in build/update-keys/.
#
# Host packages (Debian): debootstrap fdisk e2fsprogs dosfstools mtools
# cryptsetup-bin openssl, and Go;
# for arm64 also qemu-user-static and binfmt-support.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SUITE=bookworm
ARCH=${ARCH:-amd64}
# The root partition's type: "Linux root (x86-64)" from the Discoverable
# Partitions Specification (arm64 sets its own below).
ROOT_PARTTYPE=4f68bce3-e8cd-4db1-96e7-fbcaf984b709

die() { echo "image/build.sh: $*" >&2; exit 1; }
log() { echo "image/build.sh: [$(( $(date +%s) - t0 ))s] $*"; }
t0=$(date +%s)

need_tools() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || die "$t not found (apt-get install --no-install-recommends debootstrap fdisk e2fsprogs dosfstools mtools)"
	done
}

# Partition sizes (MiB). The root file system is sized from its content;
# each root slot is ROOT_SLOT_MIB, room for the releases that will follow.
ESP_MIB=128
STATE_MIB=${STATE_MIB:-1024}
ROOT_SLACK_MIB=48
ROOT_SLOT_MIB=${ROOT_SLOT_MIB:-1024}

# ---------------------------------------------------------------------------
# Disk assembly.
#   assemble_disk ROOTDIR VARDIR ESPDIR OUT.img
# ROOTDIR becomes the read-only root, VARDIR the state partition (/var),
# ESPDIR the EFI system partition. Partition UUIDs come from BUILD_DIR/partuuids.
assemble_disk() {
	local rootdir=$1 vardir=$2 espdir=$3 out=$4
	local work; work=$(dirname "$out")/.assemble.$$
	rm -rf "$work"; mkdir -p "$work"
	# shellcheck disable=SC1091
	. "$BUILD/partuuids"

	local root_kib root_mib
	root_kib=$(du -sk --apparent-size "$rootdir" | cut -f1)
	# ext4 metadata (inode tables, no journal) plus slack.
	root_mib=$(( root_kib * 115 / 100 / 1024 + ROOT_SLACK_MIB ))

	# Root: read-only at run time, so no journal; fixed UUIDs and a fixed
	# hash seed keep the image reproducible apart from file timestamps.
	[ "$root_mib" -le "$ROOT_SLOT_MIB" ] || die "the root file system needs $root_mib MiB, a slot has $ROOT_SLOT_MIB (ROOT_SLOT_MIB)"
	# 4 KiB blocks: the kernel mounts an ext4 only in blocks no smaller than
	# its device's, and the dm-verity device's are 4 KiB (mke2fs would pick
	# 1 KiB for a file system this small).
	mkfs.ext4 -q -F -L tn-root -U "$ROOT_FSUUID" -O ^has_journal -m 0 -b 4096 \
		-E hash_seed="$ROOT_FSUUID" -d "$rootdir" "$BUILD/root.ext4" "${root_mib}M" >/dev/null
	# The read-only feature: the kernel mounts it read-only whatever it is
	# asked. RAUC mounts a new slot read-write for its post-install hook,
	# and that mount alone rewrites the superblock the root hash covers.
	tune2fs -O read-only "$BUILD/root.ext4" >/dev/null
	# Slot a: the root with its dm-verity hash tree; the signed descriptor
	# goes beside slot a's kernel on the ESP (as an update's hook puts it).
	"$here/bundle.sh" --verity "$BUILD/root.ext4" "$work/slot.img" "$espdir/timenode/a" ||
		die "making slot a's dm-verity hash tree failed"
	local slot_bytes; slot_bytes=$(stat -c %s "$work/slot.img")
	[ "$slot_bytes" -le $(( ROOT_SLOT_MIB << 20 )) ] || die "the root with its hash tree needs $slot_bytes bytes, a slot has $ROOT_SLOT_MIB MiB (ROOT_SLOT_MIB)"
	mkfs.ext4 -q -F -L tn-state -U "$STATE_FSUUID" -m 1 \
		-E hash_seed="$STATE_FSUUID" -d "$vardir" "$work/state.ext4" "${STATE_MIB}M" >/dev/null
	mkfs.vfat -n TN-ESP -i "${ESP_VOLID}" -C "$work/esp.vfat" $(( ESP_MIB * 1024 )) >/dev/null
	(cd "$espdir" && find . -mindepth 1 -type d | sed 's|^\./||' | sort | while read -r d; do
		mmd -i "$work/esp.vfat" "::$d"; done)
	(cd "$espdir" && find . -type f | sed 's|^\./||' | while read -r f; do
		mcopy -i "$work/esp.vfat" "$f" "::$f"; done)

	# GPT: 1 MiB alignment, 1 MiB spare at the end for the backup table.
	local total=$(( 1 + ESP_MIB + 2 * ROOT_SLOT_MIB + STATE_MIB + 1 ))
	rm -f "$out"
	truncate -s "${total}M" "$out"
	sfdisk --quiet --label gpt "$out" <<-EOF
	label-id: $DISK_GUID
	start=1MiB, size=${ESP_MIB}MiB, type=uefi, uuid=$ESP_PARTUUID, name=esp
	size=${ROOT_SLOT_MIB}MiB, type=$ROOT_PARTTYPE, uuid=$ROOT_PARTUUID, name=tn-root-a
	size=${ROOT_SLOT_MIB}MiB, type=$ROOT_PARTTYPE, uuid=$ROOT_B_PARTUUID, name=tn-root-b
	size=${STATE_MIB}MiB, type=linux, uuid=$STATE_PARTUUID, name=tn-state
	EOF
	dd if="$work/esp.vfat" of="$out" bs=1M seek=1 conv=notrunc,sparse status=none
	dd if="$work/slot.img" of="$out" bs=1M seek=$(( 1 + ESP_MIB )) conv=notrunc,sparse status=none
	dd if="$work/state.ext4" of="$out" bs=1M seek=$(( 1 + ESP_MIB + 2 * ROOT_SLOT_MIB )) conv=notrunc,sparse status=none
	rm -rf "$work"
	echo "root_mib=$root_mib verity_slot_bytes=$slot_bytes root_slot_mib=$ROOT_SLOT_MIB state_mib=$STATE_MIB esp_mib=$ESP_MIB total_mib=$total"
}

# ---------------------------------------------------------------------------
# Full build.
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot)"
case $ARCH in
amd64) KERNEL_PKG=linux-image-amd64 EFI_LOADER=systemd-bootx64.efi EFI_REMOVABLE=BOOTX64.EFI SERIAL=ttyS0 ;;
arm64) KERNEL_PKG=linux-image-arm64 EFI_LOADER=systemd-bootaa64.efi EFI_REMOVABLE=BOOTAA64.EFI SERIAL=ttyAMA0
	ROOT_PARTTYPE=b921b045-1df0-41c3-af44-4c6f280d3fae ;;
*) die "ARCH=$ARCH: images are built for amd64 and arm64" ;;
esac
need_tools debootstrap sfdisk mkfs.ext4 mkfs.vfat mmd mcopy go chroot veritysetup openssl
# host_arch is what this machine runs natively; another ARCH runs its
# maintainer scripts under qemu-user through binfmt_misc.
host_arch=$(dpkg --print-architecture)
foreign=
if [ "$ARCH" != "$host_arch" ]; then
	[ "$ARCH" = arm64 ] || die "cross-building $ARCH on $host_arch is not supported"
	foreign=1
	qemu=/usr/bin/qemu-aarch64-static
	[ -x "$qemu" ] || die "$qemu not found (apt-get install qemu-user-static binfmt-support)"
	[ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
		die "binfmt_misc is not mounted and cannot be (needed to run arm64 programs in the chroot)"
	if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
		command -v update-binfmts >/dev/null || die "no qemu-aarch64 binfmt entry and no update-binfmts (apt-get install binfmt-support)"
		update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
		update-binfmts --enable qemu-aarch64 || die "update-binfmts --enable qemu-aarch64 failed"
	fi
	grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "binfmt entry qemu-aarch64 is not enabled"
	# Without the F flag the kernel opens the interpreter inside the chroot.
	binfmt_interp=$(sed -n 's/^interpreter //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)
	[ -n "$binfmt_interp" ] || die "cannot read the qemu-aarch64 binfmt interpreter"
fi
BUILD=${1:-$repo/build/image}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
case $BUILD in "$repo"/build/*) ;; *) die "BUILD_DIR must be under $repo/build/ (got $BUILD)";; esac

# The mirror: $MIRROR, else the one apt on this machine uses for bookworm/main.
apt_uri() { # apt_uri SUITE/COMPONENT
	apt-cache policy 2>/dev/null | awk -v s="$1" '$3 == s && $2 ~ /^(https?|file):/ { print $2; exit }'
}
MIRROR=${MIRROR:-$(apt_uri "$SUITE/main")}
[ -n "$MIRROR" ] || die "no $SUITE/main source in this machine's apt configuration (run apt-get update, or set MIRROR=)"
SECURITY_MIRROR=${SECURITY_MIRROR:-$(apt_uri "$SUITE-security/main")}
log "mirror $MIRROR${SECURITY_MIRROR:+, security $SECURITY_MIRROR}"

R=$BUILD/rootfs
mounted=()
cleanup() {
	local i
	for (( i=${#mounted[@]}-1; i>=0; i-- )); do
		umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || true
	done
	mounted=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Leftover mounts from an interrupted run would make rm -rf walk into /proc.
if grep -q " $R/" /proc/mounts; then
	grep " $R/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
fi
rm -rf "$R" "$BUILD/tree" "$BUILD/bin-amd64" "$BUILD/bin-arm64"

# The Go source: this checkout, or $TIMENODE_SRC (e.g. a `git archive` of a
# commit when the working tree is mid-change).
SRC=${TIMENODE_SRC:-$repo}

# 1. Binaries. -trimpath and no VCS stamping: the same source gives the same bytes.
# Only for ARCH: the other architecture's image builds its own (and `make
# test` cross-builds every package for arm64); image/check.sh checks the
# ELF machine of what lands in the image.
# The commit is stamped with -X instead (from $TIMENODE_COMMIT, or the
# checkout's HEAD; a source tree without git and without it says "unknown"),
# and the same version goes into os-release below.
COMMIT=${TIMENODE_COMMIT:-$(git -C "$repo" rev-parse HEAD 2>/dev/null || true)}
RELEASE=$(sed -n 's/^const Release = "\(.*\)"$/\1/p' "$SRC/cmd/internal/version/version.go")
[ -n "$RELEASE" ] || die "no const Release in $SRC/cmd/internal/version/version.go"
VERSION=$RELEASE${COMMIT:++${COMMIT:0:12}}
log "go build ($ARCH) version $VERSION"
(cd "$SRC" && CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH go build -trimpath -buildvcs=false \
	-ldflags="-s -X github.com/aunsorm/timenode/cmd/internal/version.commit=$COMMIT" \
	-o "$BUILD/bin-$ARCH/" ./cmd/timenoded ./cmd/timenodectl)

# 2. Debian.
log "debootstrap --variant=minbase $SUITE"
t_boot=$(date +%s)
debootstrap --variant=minbase --arch="$ARCH" ${foreign:+--foreign} "$SUITE" "$R" "$MIRROR" >"$BUILD/debootstrap.log" 2>&1 ||
	{ tail -n 30 "$BUILD/debootstrap.log" >&2; die "debootstrap failed (log: $BUILD/debootstrap.log)"; }
if [ -n "$foreign" ]; then
	install -D -m 0755 "$(readlink -f "$binfmt_interp")" "$R$binfmt_interp"
	log "debootstrap second stage (under qemu-user)"
	chroot "$R" /debootstrap/debootstrap --second-stage >>"$BUILD/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$BUILD/debootstrap.log" >&2; die "debootstrap --second-stage failed (log: $BUILD/debootstrap.log)"; }
fi
log "debootstrap done in $(( $(date +%s) - t_boot ))s"

chroot_mount() {
	mount -t proc proc "$R/proc"; mounted+=("$R/proc")
	mount -t sysfs sysfs "$R/sys"; mounted+=("$R/sys")
	mount --bind /dev "$R/dev"; mounted+=("$R/dev")
	mount --bind /dev/pts "$R/dev/pts"; mounted+=("$R/dev/pts")
}
in_chroot() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }

{
	echo "deb $MIRROR $SUITE main"
	echo "deb $MIRROR $SUITE-updates main"
	[ -z "$SECURITY_MIRROR" ] || echo "deb $SECURITY_MIRROR $SUITE-security main"
} >"$R/etc/apt/sources.list"
# Maintainer scripts must not start anything in the chroot.
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"; chmod 755 "$R/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$R/etc/resolv.conf"
# No documentation, manual pages or translations in the image (copyright
# files stay: licences ship with the binaries).
cat >"$R/etc/dpkg/dpkg.cfg.d/01-timenode-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
# initramfs: the modules hooks/timenode-modules adds (Debian's "most"
# without network drivers: every storage driver left after trimming, as
# real boards differ), zstd (fast to unpack under emulation too).
mkdir -p "$R/etc/initramfs-tools/conf.d"
printf 'MODULES=list\nCOMPRESS=zstd\n' >"$R/etc/initramfs-tools/conf.d/timenode.conf"

chroot_mount
log "apt-get install (kernel, systemd, apparmor, nftables)"
t_apt=$(date +%s)
in_chroot apt-get update -q >"$BUILD/apt.log" 2>&1 || { tail -n 30 "$BUILD/apt.log" >&2; die "apt-get update failed"; }
in_chroot apt-get -y -q -o Dpkg::Use-Pty=0 dist-upgrade >>"$BUILD/apt.log" 2>&1 || { tail -n 30 "$BUILD/apt.log" >&2; die "apt-get dist-upgrade failed"; }
# INITRD=No: the kernel's postinst makes no initramfs yet; one is made once,
# after the module trim (under qemu-user each mkinitramfs takes minutes).
# ca-certificates: the system roots that --witness-nts trusts when the
# site's bundle has no witness-ca.pem (public NTS servers); a Recommends
# of openssl that --no-install-recommends would leave out.
in_chroot INITRD=No apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends \
	"$KERNEL_PKG" initramfs-tools zstd e2fsprogs \
	systemd systemd-sysv udev dbus libnss-systemd \
	apparmor nftables systemd-boot-efi openssh-server sudo rauc rauc-service \
	cryptsetup-bin openssl ca-certificates \
	>>"$BUILD/apt.log" 2>&1 || { tail -n 30 "$BUILD/apt.log" >&2; die "apt-get install failed (log: $BUILD/apt.log)"; }
log "apt-get done in $(( $(date +%s) - t_apt ))s"

# 3. Trim kernel modules: no sound, graphics, cameras, radios, InfiniBand,
# staging drivers or network/cluster file systems on a rack time server.
kver=$(basename "$(ls -d "$R"/lib/modules/*)")
kmods=$R/lib/modules/$kver/kernel
before=$(du -sm "$R/lib/modules/$kver" | cut -f1)
for d in sound drivers/gpu drivers/media drivers/net/wireless drivers/infiniband drivers/staging \
	drivers/bluetooth drivers/isdn drivers/iio drivers/input/joystick drivers/input/tablet \
	drivers/input/touchscreen drivers/input/misc drivers/hwmon/pmbus drivers/mtd drivers/nfc \
	drivers/atm drivers/net/can drivers/net/wwan drivers/net/ieee802154 drivers/comedi \
	drivers/scsi/qla2xxx drivers/scsi/lpfc drivers/scsi/bfa drivers/scsi/be2iscsi drivers/target \
	drivers/net/ethernet/mellanox drivers/net/ethernet/qlogic drivers/net/ethernet/chelsio \
	drivers/net/ethernet/cavium drivers/net/ethernet/huawei drivers/net/ethernet/sfc \
	drivers/thunderbolt drivers/platform/chrome arch/x86/kvm drivers/video/fbdev drivers/accel \
	net/wireless net/mac80211 net/bluetooth net/sunrpc net/ceph net/rxrpc net/9p net/nfc \
	net/mac802154 net/ieee802154 net/rds net/tipc net/sctp net/atm net/can net/openvswitch \
	fs/nfs fs/nfsd fs/nfs_common fs/lockd fs/ceph fs/cifs fs/smbfs_common fs/ksmbd fs/ocfs2 \
	fs/gfs2 fs/btrfs fs/xfs fs/jfs fs/reiserfs fs/f2fs fs/nilfs2 fs/ubifs fs/ntfs3 fs/afs \
	fs/coda fs/orangefs fs/dlm fs/9p fs/hfs fs/hfsplus fs/udf fs/isofs fs/ufs fs/minix \
	fs/gfs2 fs/erofs fs/zonefs fs/cachefiles fs/fscache fs/netfs; do
	rm -rf "${kmods:?}/$d"
done
in_chroot depmod -a "$kver"
after=$(du -sm "$R/lib/modules/$kver" | cut -f1)
log "kernel $kver: modules trimmed from ${before} MiB to ${after} MiB"

# 4. timenode.
install -D -m 0755 "$BUILD/bin-$ARCH/timenoded" "$R/usr/sbin/timenoded"
install -D -m 0755 "$BUILD/bin-$ARCH/timenodectl" "$R/usr/bin/timenodectl"
for u in "$repo"/systemd/*.service "$repo"/systemd/*.timer; do
	install -D -m 0644 "$u" "$R/usr/lib/systemd/system/$(basename "$u")"
done
# Drop-ins for Debian's units: sshd confined, nftables after /var.
for d in ssh.service.d nftables.service.d; do
	install -D -m 0644 "$repo/systemd/$d/timenode.conf" "$R/usr/lib/systemd/system/$d/timenode.conf"
done
# time-sync.target waits for the clock to lock (systemd-time-wait-sync, bounded).
install -D -m 0644 "$repo/systemd/systemd-time-wait-sync.service.d/timenode.conf" \
	"$R/usr/lib/systemd/system/systemd-time-wait-sync.service.d/timenode.conf"
install -D -m 0644 "$repo/systemd/60-timenode.rules" "$R/usr/lib/udev/rules.d/60-timenode.rules"
install -D -m 0644 "$repo/systemd/61-timenode-media.rules" "$R/usr/lib/udev/rules.d/61-timenode-media.rules"
install -D -m 0644 "$repo/apparmor/usr.sbin.timenoded" "$R/etc/apparmor.d/usr.sbin.timenoded"
install -D -m 0644 "$repo/apparmor/timenode-refresh" "$R/etc/apparmor.d/timenode-refresh"
install -D -m 0644 "$repo/image/nftables/timenode.nft" "$R/etc/nftables.conf"
install -d -m 0755 "$R/etc/timenode" "$R/etc/timenode/nftables.d"
if [ -n "${SITE_NFT:-}" ]; then
	install -m 0644 "$SITE_NFT" "$R/etc/timenode/nftables.d/site.nft"
fi
install -D -m 0644 "$repo/README.md" "$R/usr/share/doc/timenode/README.md"
cp -a "$here/rootfs/." "$R/"
chown -R root:root "$R/etc/ssh/sshd_config.d" "$R/etc/sudoers.d" "$R/etc/timenode"
chmod 0440 "$R/etc/sudoers.d/timenode-admin"
chmod 0644 "$R/etc/timenode/appliance.env" "$R/etc/ssh/sshd_config.d/10-timenode.conf"
# A/B updates: RAUC with the two root slots, systemd-boot's boot counting
# as its bootloader (timenodectl update bootloader), and only the verifying
# update CA on the appliance.
if [ -z "${UPDATE_CA:-}" ]; then
	UPDATE_CA=$("$here/bundle.sh" --dev-ca) || die "making the development update CA failed"
fi
[ -s "$UPDATE_CA" ] || die "UPDATE_CA=$UPDATE_CA: no such file"
! grep -q "PRIVATE KEY" "$UPDATE_CA" || die "UPDATE_CA=$UPDATE_CA holds a private key: give the CA certificate only"
install -D -m 0644 "$UPDATE_CA" "$R/etc/rauc/update-ca.pem"
sed "s/@ARCH@/$ARCH/" "$here/rauc/system.conf" >"$R/etc/rauc/system.conf"
install -D -m 0755 "$here/rauc/rauc-bootloader" "$R/usr/lib/timenode/rauc-bootloader"
# The initramfs, made once the update CA is in place: it opens the root slot
# through dm-verity after checking the slot's root hash against that CA
# (etc/initramfs-tools/{hooks,scripts/local-top}/timenode-verity).
rm -f "$R/boot/initrd.img-$kver"
in_chroot update-initramfs -c -k "$kver" >>"$BUILD/apt.log" 2>&1 || { tail -n 30 "$BUILD/apt.log" >&2; die "update-initramfs failed"; }
[ -s "$R/boot/initrd.img-$kver" ] || die "update-initramfs made no $R/boot/initrd.img-$kver"
# Timed, as the steps below: under qemu-user (arm64) update-initramfs
# took most of the build with Debian's MODULES=most (808 s of 1,182 s in
# CI, 2026-12-06), half a second for each module it copies.
log "initramfs made ($(stat -c %s "$R/boot/initrd.img-$kver") bytes)"
# What a root slot needs on any board must be in it (or built into the
# kernel), and not the network drivers (hooks/timenode-modules says why):
# a hook that stopped adding modules, or an initramfs-tools that ignored
# MODULES=list, fails here, not at a board's first boot.
in_chroot lsinitramfs "/boot/initrd.img-$kver" >"$BUILD/initrd.list" 2>>"$BUILD/apt.log" ||
	die "lsinitramfs /boot/initrd.img-$kver failed"
for m in ext4 dm-verity virtio_blk virtio_pci nvme sd_mod ahci mmc_block usb-storage; do
	grep -q "/$m\.ko" "$BUILD/initrd.list" "$R/lib/modules/$kver/modules.builtin" ||
		die "the initramfs has no $m module and the kernel has none built in: a root slot on such a disk would not mount"
done
# virtio_net stands for the network group: nothing else pulls it in (a
# storage driver may pull in a NIC helper, as bnx2fc does cnic).
! grep -q '/virtio_net\.ko' "$BUILD/initrd.list" ||
	die "the initramfs holds the network drivers (virtio_net among them): is MODULES=list in force?"
initrd_modules=$(grep -c '\.ko' "$BUILD/initrd.list")
log "initramfs holds $initrd_modules modules, the root's storage drivers among them"
# Management access: one administrator, SSH keys only (installed into
# /var/lib/timenode-site by the provisioning medium or bundle), no password
# at all ("*" is not a hash of anything; "!" would make sshd treat the
# account as locked), home on the state partition for uploads.
in_chroot useradd -M -d /var/lib/ntp-admin -s /bin/bash -c "timenode administrator" -U ntp-admin
# The AppArmor denial counter's own user (timenode-apparmor-denials.service):
# static, because the root is read-only at run time and a dynamic user's
# runtime directory would be hidden from the daemon that exports the count.
in_chroot useradd --system -M -d /nonexistent -s /usr/sbin/nologin -c "timenode AppArmor denial counter" -U -G systemd-journal timenode-denials
in_chroot usermod -p '*' ntp-admin
install -d -m 0700 "$R/var/lib/ntp-admin"
in_chroot chown ntp-admin:ntp-admin /var/lib/ntp-admin
install -d -m 0755 "$R/var/lib/timenode-site"
# Host keys made by openssh-server's postinst would be the same on every
# flashed appliance: each node makes its own (timenode-sshd-keygen).
rm -f "$R"/etc/ssh/ssh_host_*
in_chroot visudo -c -q -f /etc/sudoers.d/timenode-admin || die "sudoers.d/timenode-admin does not parse"
# Compile-check the profiles and the ruleset with the image's own tools.
in_chroot apparmor_parser -Q -K -T /etc/apparmor.d/usr.sbin.timenoded /etc/apparmor.d/timenode-refresh
log "AppArmor profiles compile"
units="timenoded.service timenode-firstboot.service timenode-pps-modules.service nftables.service timenode-update-gate.service timenode-factory-reset.service
	systemd-networkd.service apparmor.service systemd-time-wait-sync.service ssh.service timenode-sshd-keygen.service
	timenode-apparmor-denials.timer"
# shellcheck disable=SC2086
in_chroot systemctl enable $units >/dev/null 2>&1
# shellcheck disable=SC2086
in_chroot systemctl is-enabled $units >/dev/null || die "enabling units in the image failed"
# No network time client may fight timenoded for CLOCK_REALTIME; no package
# maintenance timers on a read-only root.
in_chroot systemctl mask systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
	dpkg-db-backup.timer >/dev/null 2>&1
in_chroot systemd-hwdb update
log "units enabled, hwdb updated"

# 5. Tidy and split into ESP, root and /var.
cleanup
rm -f "$R/usr/sbin/policy-rc.d"
in_chroot apt-get clean
if [ -n "$foreign" ]; then rm -f "$R$binfmt_interp"; fi
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/cache/debconf/*-old \
	"$R"/var/lib/dpkg/*-old "$R"/var/log/* "$R"/tmp/* "$R"/var/tmp/* "$R"/usr/share/man/* \
	"$R"/usr/share/info/* "$R/etc/apparmor.d/cache" "$R"/var/cache/apparmor/*
find "$R/usr/share/doc" -mindepth 2 ! -name copyright ! -path "*/timenode/*" -delete 2>/dev/null || true
: >"$R/etc/resolv.conf"
# Empty machine-id: systemd makes a transient one on the read-only root.
: >"$R/etc/machine-id"; rm -f "$R/var/lib/dbus/machine-id"
echo timenode >"$R/etc/hostname"
# The image says which timenode it is, as the binaries and metrics do
# (os-release(5): IMAGE_ID, IMAGE_VERSION; the Debian fields stay).
osr=$R/usr/lib/os-release
[ -f "$osr" ] || die "$osr missing"
sed -i '/^IMAGE_ID=/d; /^IMAGE_VERSION=/d; /^BUILD_ID=/d' "$osr"
printf 'IMAGE_ID=timenode\nIMAGE_VERSION=%s\nBUILD_ID=%s\n' "$VERSION" "${COMMIT:-unknown}" >>"$osr"
# The host's own name resolves without DNS (sudo looks it up on every use).
printf '127.0.0.1\tlocalhost\n127.0.1.1\ttimenode\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$R/etc/hosts"

T=$BUILD/tree
mkdir -p "$T/esp"
mv "$R" "$T/root"; R=$T/root
mv "$R/var" "$T/var"; install -d -m 0755 "$R/var"
chmod 0755 "$T/var"
# The pristine /var, kept in the root: a factory reset makes the state
# partition anew from it (timenode-factory-reset.service).
install -d -m 0755 "$R/usr/lib/timenode/factory"
cp -a "$T/var" "$R/usr/lib/timenode/factory/var"

# Fixed per build: the loader entry and fstab name partitions by PARTUUID.
cat >"$BUILD/partuuids" <<EOF
DISK_GUID=$(cat /proc/sys/kernel/random/uuid)
ESP_PARTUUID=$(cat /proc/sys/kernel/random/uuid)
ROOT_PARTUUID=$(cat /proc/sys/kernel/random/uuid)
ROOT_B_PARTUUID=$(cat /proc/sys/kernel/random/uuid)
STATE_PARTUUID=$(cat /proc/sys/kernel/random/uuid)
ROOT_FSUUID=$(cat /proc/sys/kernel/random/uuid)
STATE_FSUUID=$(cat /proc/sys/kernel/random/uuid)
ESP_VOLID=$(od -An -tx4 -N4 /dev/urandom | tr -d ' ')
EOF
# shellcheck disable=SC1091
. "$BUILD/partuuids"

# By partition name, not UUID: an update's root slot comes from another
# build and must mount this appliance's state and ESP. The root itself is
# the slot the loader entry names (root=PARTUUID=..., mounted read-only).
cat >"$R/etc/fstab" <<EOF
# timenode appliance: read-only root (the booted slot), state on its own partition.
PARTLABEL=tn-state /var  ext4   rw,noatime,nodev,nosuid,errors=remount-ro  0 2
PARTLABEL=esp      /boot/efi vfat ro,noauto,x-systemd.automount,umask=0077  0 0
tmpfs              /tmp  tmpfs  rw,nodev,nosuid,mode=1777,size=64M  0 0
EOF
install -d -m 0755 "$R/boot/efi"
# ConditionNeedsUpdate= (ldconfig, hwdb, sysusers) would fire on every boot
# of a read-only root whose /usr is newer than the stamps: the build did it.
touch -r "$R/usr" "$R/etc/.updated" "$T/var/.updated"

# The slot's own command line (without root= and rauc.slot=, which name the
# slot): an update writes it into the new slot's loader entry.
slotcmdline="ro rootfstype=ext4 rootwait console=tty0 console=$SERIAL,115200n8 apparmor=1 security=apparmor panic=10"
cmdline="root=PARTUUID=$ROOT_PARTUUID $slotcmdline rauc.slot=a"
echo "$cmdline" >"$BUILD/cmdline"
printf 'VERSION=%s\nARCH=%s\n' "$VERSION" "$ARCH" >"$BUILD/version"

cp "$R/boot/vmlinuz-$kver" "$BUILD/vmlinuz"
cp "$R/boot/initrd.img-$kver" "$BUILD/initrd.img"
# The slot carries its kernel, initrd and command line, so an update bundle
# brings its own (timenodectl update install-entry copies them to the ESP).
install -D -m 0644 "$BUILD/vmlinuz" "$R/usr/lib/timenode/boot/vmlinuz"
install -D -m 0644 "$BUILD/initrd.img" "$R/usr/lib/timenode/boot/initrd.img"
echo "$slotcmdline" >"$R/usr/lib/timenode/boot/cmdline"
# The ESP: systemd-boot as the removable-media loader, slot a's entry.
install -D -m 0644 "$R/usr/lib/systemd/boot/efi/$EFI_LOADER" "$T/esp/EFI/BOOT/$EFI_REMOVABLE"
install -D -m 0644 "$BUILD/vmlinuz" "$T/esp/timenode/a/vmlinuz"
install -D -m 0644 "$BUILD/initrd.img" "$T/esp/timenode/a/initrd.img"
install -D -m 0644 /dev/null "$T/esp/loader/loader.conf"
# No menu entries but the appliance's own, and no editor: a key on any
# console (a GNSS receiver on a UART the firmware listens to sends NMEA
# from power-on: seen selecting "Reboot Into Firmware Interface" in the
# boot test) can only boot timenode, and nobody at the console can edit the
# kernel command line (init=/bin/sh).
# The default is a pattern: the first entry in systemd-boot's order, so a
# slot whose trial boots ran out (sorted last) is passed over (image/slots).
printf 'default timenode-*\ntimeout 0\nconsole-mode keep\neditor no\nauto-entries no\nauto-firmware no\n' >"$T/esp/loader/loader.conf"
install -D -m 0644 /dev/null "$T/esp/loader/entries/timenode-a.conf"
printf 'title timenode %s (slot a)\nsort-key timenode\nversion 1\nlinux /timenode/a/vmlinuz\ninitrd /timenode/a/initrd.img\noptions %s\n' "$VERSION" "$cmdline" \
	>"$T/esp/loader/entries/timenode-a.conf"
rm -f "$R"/boot/vmlinuz* "$R"/boot/initrd.img* "$R"/vmlinuz* "$R"/initrd.img*

log "assembling disk"
sizes=$(assemble_disk "$R" "$T/var" "$T/esp" "$BUILD/timenode-$ARCH.img")
elapsed=$(( $(date +%s) - t0 ))
{
	echo "build_seconds=$elapsed"
	echo "kernel=$kver"
	echo "modules_mib_before_trim=$before modules_mib_after_trim=$after"
	echo "$sizes"
	echo "image=$BUILD/timenode-$ARCH.img"
	echo "image_bytes=$(stat -c %s "$BUILD/timenode-$ARCH.img")"
	echo "image_allocated_kib=$(du -k "$BUILD/timenode-$ARCH.img" | cut -f1)"
	echo "root_tree_mib=$(du -sm "$R" | cut -f1) var_tree_mib=$(du -sm "$T/var" | cut -f1)"
	echo "initrd_bytes=$(stat -c %s "$BUILD/initrd.img") initrd_modules=$initrd_modules"
} >"$BUILD/build-report.txt"
log "done in ${elapsed}s"
cat "$BUILD/build-report.txt"
