package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFactoryResetRequestAndApply(t *testing.T) {
	esp := flashedESP(t)
	factory := t.TempDir()
	var calls [][]string
	fail := false
	defer func(r func(context.Context, io.Writer, io.Writer, string, ...string) error) { runner = r }(runner)
	runner = func(_ context.Context, _, _ io.Writer, name string, args ...string) error {
		calls = append(calls, append([]string{name}, args...))
		if fail && name == "mkfs.ext4" {
			return errors.New("exit status 1")
		}
		return nil
	}
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := dispatch(append([]string{"factory-reset", "--esp", esp, "--device", "/dev/fake-state", "--factory-var", factory}, args...), &out, &errb)
		return out.String(), errb.String(), code
	}
	// Without a request, --apply does nothing.
	if out, _, code := run("--apply"); code != 0 || !strings.Contains(out, "no factory reset requested") || len(calls) != 0 {
		t.Fatalf("apply without a request: %d %q %v", code, out, calls)
	}
	// Without --yes, nothing is asked.
	if _, e, code := run(); code != 2 || !strings.Contains(e, "--yes") {
		t.Fatalf("without --yes: %d %q", code, e)
	}
	if _, err := os.Stat(filepath.Join(esp, resetMarker)); err == nil {
		t.Fatal("a reset was requested without --yes")
	}
	if out, e, code := run("--yes"); code != 0 || !strings.Contains(out, "next boot wipes") {
		t.Fatalf("request: %d %q %q", code, out, e)
	}
	if !slices.Equal(calls[len(calls)-1], []string{"systemctl", "reboot"}) {
		t.Fatalf("the request did not reboot: %v", calls)
	}
	// A failing mkfs keeps the request for the next boot.
	fail, calls = true, nil
	if _, e, code := run("--apply"); code != 1 || !strings.Contains(e, "the next boot tries again") {
		t.Fatalf("apply with a failing mkfs: %d %q", code, e)
	}
	if _, err := os.Stat(filepath.Join(esp, resetMarker)); err != nil {
		t.Fatal("a failed reset dropped the request")
	}
	fail, calls = false, nil
	if out, e, code := run("--apply"); code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("apply: %d %q %q", code, out, e)
	}
	want := []string{"mkfs.ext4", "-q", "-F", "-L", "tn-state", "-m", "1", "-d", factory, "/dev/fake-state"}
	if len(calls) != 1 || !slices.Equal(calls[0], want) {
		t.Fatalf("apply ran %v, want %v", calls, want)
	}
	if _, err := os.Stat(filepath.Join(esp, resetMarker)); err == nil {
		t.Fatal("the request outlived the reset: every boot would wipe /var")
	}
	// A missing factory tree refuses rather than making an empty /var.
	run("--yes", "--no-reboot")
	os.RemoveAll(factory)
	calls = nil
	if _, e, code := run("--apply"); code != 1 || !strings.Contains(e, "no factory /var") || len(calls) != 0 {
		t.Fatalf("apply without a factory tree: %d %q %v", code, e, calls)
	}
}
