// Package futuretest runs the project's unit tests on a date far ahead, in
// a throwaway qemu guest, because the host's clock must never change.
//
// TestFutureDates (host side, behind `make test-future`) compiles every
// package's tests as static binaries (CGO_ENABLED=0 go test -c), prebuilds
// timenoded and timenodectl for the end-to-end tests (which otherwise run
// `go build`; the guest has no toolchain, see package testbin), and packs
// them with the tracked source tree (the tests read their testdata from it)
// into an initramfs whose /init is this package's own test binary. It then
// boots one guest per date with qemu under TCG, the guest's real-time clock
// started at that date by -rtc base=…, so that CLOCK_REALTIME, and with it
// time.Now in every test, is years ahead. Nothing steers a clock.
//
// In the guest, /init checks that the clock really is at the date asked
// for, brings up loopback, runs each package's binary from its source
// directory with -test.v (a package listed in guestSubtests runs only the
// subtests named there), and writes one line per package, one per skipped
// test with its reason, and the output of any failing package to the second
// serial port, then a result marker, and powers off. The host test fails on
// any failing package, a missing marker or a guest that was not at the date;
// it logs every skip so that a reviewer can check that each names the
// environment (a tool the guest lacks), not the date.
package futuretest
