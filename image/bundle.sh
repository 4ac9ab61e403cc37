#!/usr/bin/env bash
# image/bundle.sh: a signed RAUC update bundle from a built image (`make update-bundle`).
#
#   image/bundle.sh BUILD_DIR
#
# BUILD_DIR is what image/build.sh made: root.ext4 (the root slot's file
# system), version (VERSION and ARCH). The bundle is RAUC's verity format
# (a squashfs whose dm-verity root hash is in the signed manifest, so the
# appliance checks every block as it reads it) holding the root image and
# the slot hook that puts the new slot's kernel, initrd and loader entry on
# the ESP (timenodectl update install-entry, from the new slot).
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

# --dev-ca: make the development update CA and signer if missing and print
# the CA's path (image/build.sh installs it when no UPDATE_CA is given).
if [ "${1:-}" = --dev-ca ]; then
	dev_keys
	echo "$UPDATE_CA"
	exit 0
fi
BUILD=${1:?usage: image/bundle.sh BUILD_DIR | --dev-ca}
[ -d "$BUILD" ] || die "$BUILD: no such directory"
BUILD=$(cd "$BUILD" && pwd)
command -v rauc >/dev/null || die "rauc not found (apt-get install rauc squashfs-tools)"
command -v mksquashfs >/dev/null || die "mksquashfs not found (apt-get install squashfs-tools)"
[ -s "$BUILD/root.ext4" ] || die "$BUILD/root.ext4 missing: build the image first (make image)"
[ -s "$BUILD/version" ] || die "$BUILD/version missing: build the image first (make image)"
# shellcheck disable=SC1091
. "$BUILD/version"
[ -n "${VERSION:-}" ] && [ -n "${ARCH:-}" ] || die "$BUILD/version lacks VERSION or ARCH"

if [ -z "${UPDATE_CERT:-}" ]; then dev_keys; fi
[ -s "${UPDATE_KEY:-}" ] && [ -s "${UPDATE_CA:-}" ] || die "UPDATE_CERT is set: UPDATE_KEY and UPDATE_CA must be too"

in=$BUILD/.bundle.$$
rm -rf "$in"; mkdir -p "$in"
trap 'rm -rf "$in"' EXIT
ln "$BUILD/root.ext4" "$in/root.ext4" 2>/dev/null || cp "$BUILD/root.ext4" "$in/root.ext4"
cat >"$in/hook.sh" <<'EOF'
#!/bin/sh
# RAUC slot hook of a timenode bundle: after the root image is written and
# mounted, the new slot's own timenodectl puts its kernel, initrd and loader
# entry on the ESP (the entry stays bad until RAUC makes the slot primary).
set -eu
case "$1" in
slot-post-install)
	exec "$RAUC_SLOT_MOUNT_POINT/usr/bin/timenodectl" update install-entry ;;
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
	echo "root_image_bytes=$(stat -c %s "$BUILD/root.ext4")"
	echo "compatible=timenode-$ARCH version=$VERSION"
} >"$BUILD/bundle-report.txt"
cat "$BUILD/bundle-report.txt"
