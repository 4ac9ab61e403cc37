package testbin

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestBuildPrefersPrebuilt(t *testing.T) {
	pre := t.TempDir()
	if err := os.WriteFile(filepath.Join(pre, "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(DirEnv, pre)
	got, err := Build(t.TempDir(), "tool", "./nowhere")
	if err != nil || got != filepath.Join(pre, "tool") {
		t.Fatalf("Build = %q, %v; want the prebuilt %s", got, err, filepath.Join(pre, "tool"))
	}
	if _, err := Build(t.TempDir(), "absent", "./nowhere"); err == nil {
		t.Fatal("a prebuilt binary that is not there was accepted")
	}
}

func TestBuildWithoutToolchain(t *testing.T) {
	t.Setenv(DirEnv, "")
	t.Setenv("PATH", t.TempDir())
	if _, err := Build(t.TempDir(), "tool", "./nowhere"); !errors.Is(err, ErrNoToolchain) {
		t.Fatalf("err = %v, want ErrNoToolchain", err)
	}
}
