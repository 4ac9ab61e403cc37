// Package version says which timenode a binary is: the release of its
// source tree and the commit it was built from. Both binaries, the
// timenode_build_info metric and the image's os-release say the same, so
// an operator can tell from any of them what runs.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Release is the version of this source tree, raised when a release is
// cut (semantic versioning).
const Release = "0.2.0"

// commit is the full commit hash, set at link time by the Makefile and
// image/build.sh (-ldflags -X), which build with -buildvcs=false so that
// the same source gives the same bytes. A plain `go build` in a checkout
// leaves it empty and the Go toolchain's VCS stamp is used instead.
var commit string

// Info identifies a build.
type Info struct {
	Release   string
	Commit    string // full hash, "unknown" when the build carries none
	Modified  bool   // built from a checkout with uncommitted changes (VCS stamp only)
	GoVersion string
}

// Get returns this binary's Info.
func Get() Info {
	info := Info{Release: Release, Commit: commit, GoVersion: runtime.Version()}
	if info.Commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			info.Commit, info.Modified = fromSettings(bi.Settings)
		}
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

// fromSettings reads the VCS stamp of a build.
func fromSettings(settings []debug.BuildSetting) (rev string, modified bool) {
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return rev, modified
}

// Version is the release with the short commit: "0.2.0+3f2a9c1d4e5b", and
// "-dirty" after a build from a modified checkout. It is what os-release's
// IMAGE_VERSION holds.
func (i Info) Version() string {
	v := i.Release
	if i.Commit != "unknown" && i.Commit != "" {
		v += "+" + i.Commit[:min(12, len(i.Commit))]
	}
	if i.Modified {
		v += "-dirty"
	}
	return v
}

// String is the line --version prints: "timenoded 0.2.0+3f2a9c1d4e5b
// (commit 3f2a9c1d…, go1.25.4)", given the program name.
func (i Info) String() string { return i.Line("timenode") }

// Line is String for the named program.
func (i Info) Line(program string) string {
	return fmt.Sprintf("%s %s (commit %s, %s)", program, i.Version(), i.Commit, i.GoVersion)
}

// Parse reads the version from a Line, for tests and tools that compare
// what a binary says with what the image or metrics say.
func Parse(line string) (program, version string, err error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return "", "", fmt.Errorf("version: %q is not a version line", line)
	}
	return f[0], f[1], nil
}
