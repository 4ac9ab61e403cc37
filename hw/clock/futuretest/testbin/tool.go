package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// NeedTool returns the path of the host program name: found on PATH, in
// /usr/sbin or /sbin (daemons such as chronyd, which a user's PATH may
// lack), or, when name is a path, that file. Without it the test skips,
// naming the Debian package pkg that provides it, or fails when CI=true:
// CI installs every such package, so a missing one there is a broken
// setup, never a reason to skip quietly.
func NeedTool(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, ok := findTool(name); ok {
		return p
	}
	msg := fmt.Sprintf("%s not found: install the Debian package %s", name, pkg)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func findTool(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	if strings.Contains(name, "/") {
		if fi, err := os.Stat(name); err == nil && !fi.IsDir() {
			return name, true
		}
		return "", false
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}
