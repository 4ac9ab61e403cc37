//go:build cgo && linux

package cabi

import (
	"os"
	"testing"

	"github.com/aunsorm/timenode/hw/pps/internal/ppsabi"
)

// requireHeader skips without <linux/pps.h> on a developer machine and fails
// on CI, which must never skip this test silently.
func requireHeader(t *testing.T) {
	t.Helper()
	if HaveHeader() {
		return
	}
	const msg = "<linux/pps.h> not found: install the Debian package linux-libc-dev"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestLayoutMatchesKernelHeader compares every ioctl number, struct size and
// field offset package pps uses (through golang.org/x/sys/unix) with the
// values the C compiler derives from <linux/pps.h> on this architecture.
func TestLayoutMatchesKernelHeader(t *testing.T) {
	requireHeader(t)
	goFields := ppsabi.GoLayout().Fields()
	cFields := KernelLayout().Fields()
	if len(goFields) != len(cFields) {
		t.Fatalf("layouts have %d and %d fields", len(goFields), len(cFields))
	}
	for i, want := range cFields {
		got := goFields[i]
		t.Run(want.Name, func(t *testing.T) {
			if got.Value != want.Value {
				t.Errorf("%s: Go has %#x, <linux/pps.h> has %#x", want.Name, got.Value, want.Value)
			}
		})
	}
}

// TestConstantsMatchKernelHeader compares the mode bits redeclared in Go with
// the macros of <linux/pps.h>.
func TestConstantsMatchKernelHeader(t *testing.T) {
	requireHeader(t)
	kernel := KernelConstants()
	tests := []struct {
		name string
		got  int
	}{
		{"PPS_API_VERS_1", ppsabi.APIVersion},
		{"PPS_CAPTUREASSERT", ppsabi.CaptureAssert},
		{"PPS_CAPTURECLEAR", ppsabi.CaptureClear},
		{"PPS_OFFSETASSERT", ppsabi.OffsetAssert},
		{"PPS_CANWAIT", ppsabi.CanWait},
		{"PPS_TSFMT_TSPEC", ppsabi.TSFmtTSpec},
		{"PPS_TIME_INVALID", ppsabi.TimeInvalid},
	}
	if len(tests) != len(kernel) {
		t.Fatalf("test covers %d constants, KernelConstants has %d", len(tests), len(kernel))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, ok := kernel[tt.name]
			if !ok {
				t.Fatalf("KernelConstants lacks %s", tt.name)
			}
			if tt.got != want {
				t.Errorf("%s = %#x in Go, %#x in <linux/pps.h>", tt.name, tt.got, want)
			}
		})
	}
}
