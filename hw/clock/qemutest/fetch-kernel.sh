#!/bin/sh
# fetch-kernel.sh CACHE_DIR
#
# Downloads Debian's linux-image-amd64 metapackage and the versioned
# linux-image-*-amd64 package it depends on with `apt-get download` (the
# packages are never installed), extracts the kernel with `dpkg-deb -x` and
# leaves it as CACHE_DIR/vmlinuz. A kernel already in the cache is kept.
# Needs apt (with package lists from `apt-get update`) and dpkg, both part of
# every Debian system, and network access to the Debian mirror apt uses.
set -eu

cache=${1:?usage: fetch-kernel.sh CACHE_DIR}
mkdir -p "$cache"
cd "$cache"

if [ -s vmlinuz ]; then
	exit 0
fi

rm -rf extract ./*.deb
apt-get download linux-image-amd64
meta=$(ls linux-image-amd64_*.deb)
# The metapackage depends on exactly one versioned image, for example
# "linux-image-6.1.0-41-amd64 (= 6.1.158-1)".
dep=$(dpkg-deb -f "$meta" Depends | tr ',|' '\n\n' |
	sed -n 's/^ *\(linux-image-[0-9][^ (]*\).*/\1/p' | head -n 1)
if [ -z "$dep" ]; then
	echo "fetch-kernel.sh: no versioned kernel in the Depends of $meta" >&2
	exit 1
fi
apt-get download "$dep"
dpkg-deb -x "$(ls "${dep}"_*.deb)" extract
kernel=$(ls extract/boot/vmlinuz-* | head -n 1)
cp "$kernel" vmlinuz.tmp
mv vmlinuz.tmp vmlinuz
echo "$dep" >kernel-package
rm -rf extract ./*.deb
echo "fetch-kernel.sh: $dep -> $cache/vmlinuz"
