// Package testbin gives end-to-end tests the project's own binaries: built
// from source with the Go toolchain, or, in the future-dated qemu guest
// (hw/clock/futuretest), which has no toolchain, taken prebuilt from the
// directory named by $TIMENODE_TEST_BINDIR.
package testbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// DirEnv names the directory of prebuilt binaries.
const DirEnv = "TIMENODE_TEST_BINDIR"

// ErrNoToolchain says that neither a Go toolchain nor prebuilt binaries are
// at hand: a fact about the environment, on which tests skip.
var ErrNoToolchain = errors.New("no Go toolchain on PATH to build the binary, and " + DirEnv + " is unset")

// Build returns the path of the binary name of package pkg (an import path
// or a directory relative to the test's own): $TIMENODE_TEST_BINDIR/name
// when that is set, otherwise built into dir with `go build`.
func Build(dir, name, pkg string) (string, error) {
	if pre := os.Getenv(DirEnv); pre != "" {
		p := filepath.Join(pre, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("prebuilt %s: %w", name, err)
		}
		return p, nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, ErrNoToolchain)
	}
	out := filepath.Join(dir, name)
	if b, err := exec.Command(goTool, "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}
