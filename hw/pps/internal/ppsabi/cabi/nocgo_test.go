//go:build !cgo && linux

package cabi

import (
	"os"
	"testing"
)

// TestCgoAvailable stands in for the ABI comparison when cgo is off, so the
// comparison is never skipped silently.
func TestCgoAvailable(t *testing.T) {
	const msg = "cgo is disabled (CGO_ENABLED=0 or no C compiler): install the Debian package gcc " +
		"to compare the PPS ABI with <linux/pps.h>"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
