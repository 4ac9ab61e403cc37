#!/usr/bin/env bash
# image/bundle.sh: a signed RAUC update bundle from a built image (`make update-bundle`).
#
#   image/bundle.sh BUILD_DIR
#
# BUILD_DIR is what image/build.sh made: root.ext4 (the root slot's file
# system), version (VERSION and ARCH). The bundle is RAUC's verity format
# (a squashfs whose dm-verity root hash is in the signed manifest, so the
# appliance checks every block as it reads it) holding the slot image (the
# root file system with its own dm-verity hash tree appended), the slot's
# signed verity descriptor, and the slot hook that puts the new slot's
# kernel, initrd, descriptor and loader entry on the ESP (timenodectl update
# install-entry, from the new slot).
#
#   image/bundle.sh --verity ROOT.ext4 SLOT.img DIR
#
# makes only the slot image and DIR/verity.env (root hash, hash tree
# offset, data blocks) with its CMS signature DIR/verity.env.p7s: the
# initramfs of every slot checks that signature against the update CA and
# the whole slot against the root hash before it mounts the root
# (image/rootfs/etc/initramfs-tools). image/build.sh uses it for slot a.
#
# Signing: UPDATE_CERT and UPDATE_KEY (PEM) sign; UPDATE_CA is the
# verifying CA the appliance holds (/etc/rauc/update-ca.pem). The key
# never enters the image. Without them, a development update CA and signer
# are made once in build/update-keys/ (never use those in production).
#
# Output: BUILD_DIR/timenode-ARCH-VERSION.raucb and its size in
# BUILD_DIR/bundle-report.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
die() { echo "image/bundle.sh: $*" >&2; exit 1; }
dev_keys() {
	local d=$repo/build/update-keys
	if [ ! -s "$d/signer.pem" ]; then
		mkdir -p "$d"; chmod 700 "$d"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
			-subj "/CN=timenode development update CA" -keyout "$d/ca.key" -out "$d/ca.pem" \
			-addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=timenode development update signer" \
			-keyout "$d/signer.key" -out "$d/signer.csr" 2>/dev/null
		printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\n' >"$d/signer.ext"
		openssl x509 -req -in "$d/signer.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
			-days 3650 -extfile "$d/signer.ext" -out "$d/signer.pem" 2>/dev/null
		rm -f "$d/signer.csr" "$d/signer.ext"
	fi
	UPDATE_CERT=$d/signer.pem UPDATE_KEY=$d/signer.key UPDATE_CA=$d/ca.pem
}
# signer: UPDATE_CERT, UPDATE_KEY and UPDATE_CA all given, or none (the
# development keys). A CA alone would sign with the development signer
# something the appliance, holding that CA, then refuses.
signer() {
	if [ -z "${UPDATE_CERT:-}${UPDATE_KEY:-}${UPDATE_CA:-}" ]; then
		dev_keys
	fi
	[ -s "${UPDATE_CERT:-}" ] && [ -s "${UPDATE_KEY:-}" ] && [ -s "${UPDATE_CA:-}" ] ||
		die "UPDATE_CERT, UPDATE_KEY and UPDATE_CA go together: give all three (files), or none for the development keys"
}

# verity_slot SRC DST DIR: DST is SRC with a dm-verity hash tree (SHA-256,
# 4 KiB blocks) appended, what a root slot holds; DIR gets verity.env and
# its signature verity.env.p7s, checked here against UPDATE_CA as the
# initramfs will check it.
verity_slot() {
	local src=$1 dst=$2 dir=$3 size out hash
	command -v veritysetup >/dev/null || die "veritysetup not found (apt-get install cryptsetup-bin)"
	command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
	size=$(stat -c %s "$src")
	(( size > 0 && size % 4096 == 0 )) || die "$src: $size bytes is not a whole number of 4 KiB blocks"
	local sb bs; sb=$(dumpe2fs -h "$src" 2>/dev/null)
	bs=$(sed -n 's/^Block size:[[:space:]]*//p' <<<"$sb")
	[ "$bs" = 4096 ] || die "$src: ext4 blocks of ${bs:-unknown} bytes; the slot's dm-verity device has 4 KiB blocks and the kernel would not mount it (mkfs.ext4 -b 4096)"
	grep -Eq '^Filesystem features:.* read-only( |$)' <<<"$sb" ||
		die "$src: no read-only feature; RAUC mounts the new slot for its hook, and a writable mount changes the superblock the root hash covers (tune2fs -O read-only)"
	cp --sparse=always "$src" "$dst"
	out=$(veritysetup format --hash=sha256 --data-block-size=4096 --hash-block-size=4096 \
		--data-blocks=$(( size / 4096 )) --hash-offset="$size" "$dst" "$dst" 2>&1) ||
		die "veritysetup format $dst: $out"
	hash=$(sed -n 's/^Root hash:[[:space:]]*//p' <<<"$out")
	[[ $hash =~ ^[0-9a-f]{64}$ ]] || die "veritysetup format printed no root hash: $out"
	mkdir -p "$dir"
	printf 'ROOT_HASH=%s\nHASH_OFFSET=%s\nDATA_BLOCKS=%s\n' "$hash" "$size" $(( size / 4096 )) >"$dir/verity.env"
	openssl cms -sign -binary -noattr -in "$dir/verity.env" -signer "$UPDATE_CERT" -inkey "$UPDATE_KEY" \
		-outform DER -out "$dir/verity.env.p7s" || die "signing $dir/verity.env failed"
	out=$(openssl cms -verify -binary -inform DER -in "$dir/verity.env.p7s" -content "$dir/verity.env" \
		-CAfile "$UPDATE_CA" -purpose any -no_check_time -out /dev/null 2>&1) ||
		die "the verity descriptor's signature does not verify against $UPDATE_CA (is UPDATE_CERT issued by it?): $out"
}

# --dev-ca: make the development update CA and signer if missing and print
# the CA's path (image/build.sh installs it when no UPDATE_CA is given).
if [ "${1:-}" = --dev-ca ]; then
	dev_keys
	echo "$UPDATE_CA"
	exit 0
fi
if [ "${1:-}" = --verity ]; then
	[ $# -eq 4 ] || die "usage: image/bundle.sh --verity ROOT.ext4 SLOT.img DIR"
	signer
	verity_slot "$2" "$3" "$4"
	exit 0
fi
BUILD=${1:?usage: image/bundle.sh BUILD_DIR | --verity ROOT.ext4 SLOT.img DIR | --dev-ca}
[ -d "$BUILD" ] || die "$BUILD: no such directory"
BUILD=$(cd "$BUILD" && pwd)
command -v rauc >/dev/null || die "rauc not found (apt-get install rauc squashfs-tools)"
command -v mksquashfs >/dev/null || die "mksquashfs not found (apt-get install squashfs-tools)"
[ -s "$BUILD/root.ext4" ] || die "$BUILD/root.ext4 missing: build the image first (make image)"
[ -s "$BUILD/version" ] || die "$BUILD/version missing: build the image first (make image)"
# shellcheck disable=SC1091
. "$BUILD/version"
[ -n "${VERSION:-}" ] && [ -n "${ARCH:-}" ] || die "$BUILD/version lacks VERSION or ARCH"

signer

in=$BUILD/.bundle.$$
rm -rf "$in"; mkdir -p "$in"
trap 'rm -rf "$in"' EXIT
# The slot image keeps RAUC's name for an ext4 image: RAUC writes it raw,
# hash tree and all, and mounts the ext4 in front of it for the hook.
verity_slot "$BUILD/root.ext4" "$in/root.ext4" "$in"
cat >"$in/hook.sh" <<'EOF'
#!/bin/sh
# RAUC slot hook of a timenode bundle: after the root image is written and
# mounted, the new slot's own timenodectl puts its kernel, initrd, the
# bundle's signed verity descriptor and the loader entry on the ESP (the
# entry stays bad until RAUC makes the slot primary).
set -eu
case "$1" in
slot-post-install)
	exec "$RAUC_SLOT_MOUNT_POINT/usr/bin/timenodectl" update install-entry \
		--verity "${RAUC_BUNDLE_MOUNT_POINT:-${RAUC_UPDATE_SOURCE:-$(dirname "$0")}}" ;;
esac
EOF
chmod 755 "$in/hook.sh"
cat >"$in/manifest.raucm" <<EOF
[update]
compatible=timenode-$ARCH
version=$VERSION
description=timenode appliance root file system

[bundle]
format=verity

[hooks]
filename=hook.sh

[image.rootfs]
filename=root.ext4
hooks=post-install
EOF
out=$BUILD/timenode-$ARCH-$VERSION.raucb
rm -f "$out"
rauc bundle --cert "$UPDATE_CERT" --key "$UPDATE_KEY" --keyring "$UPDATE_CA" "$in" "$out" >"$BUILD/bundle.log" 2>&1 ||
	{ cat "$BUILD/bundle.log" >&2; die "rauc bundle failed"; }
{
	echo "bundle=$out"
	echo "bundle_bytes=$(stat -c %s "$out")"
	echo "root_image_bytes=$(stat -c %s "$BUILD/root.ext4") slot_image_bytes=$(stat -c %s "$in/root.ext4")"
	echo "compatible=timenode-$ARCH version=$VERSION"
} >"$BUILD/bundle-report.txt"
cat "$BUILD/bundle-report.txt"
