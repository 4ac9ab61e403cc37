// Package cabi reports the Linux PPS ABI as the C compiler sees it in
// <linux/pps.h>, for the tests that compare it with package ppsabi. It is a
// package of its own so that only those tests need cgo: package pps and the
// daemon build with CGO_ENABLED=0. Without cgo it is empty, and its tests
// skip (or fail when CI=true) naming the Debian package to install.
package cabi
