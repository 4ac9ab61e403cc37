//go:build !linux

package pps

import (
	"errors"
	"fmt"
)

// OpenKernel fails on systems other than Linux, which have no PPS API this
// package speaks; use the GPIO source there.
func OpenKernel(path string, opts KernelOptions) (*Kernel, error) {
	return nil, fmt.Errorf("pps: open %s: the kernel PPS API needs Linux, use the GPIO source: %w",
		path, errors.ErrUnsupported)
}
