package devtls

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const fullDiskEnv = "DEVTLS_TEST_FULL_DISK_DIR"

// TestFullDiskChild is not a test on its own: run by
// TestFullDiskKeepsTheOldFiles in a child process whose file size limit
// is a few bytes, as a full disk would be, it regenerates the material.
func TestFullDiskChild(t *testing.T) {
	dir := os.Getenv(fullDiskEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestFullDiskKeepsTheOldFiles")
	}
	signal.Ignore(syscall.SIGXFSZ) // writes past the limit fail with EFBIG
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 16, Max: 16}); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(dir, []string{"localhost"}, time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), time.Hour)
	if err == nil {
		t.Fatal("Generate succeeded with no room to write")
	}
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("err %v, want the write's EFBIG", err)
	}
	os.Exit(7) // the parent tells a reported failure from a crash
}

// TestFullDiskKeepsTheOldFiles: a write that fails (full disk) is an error
// and leaves the previous files whole. Before, a write error was shadowed
// and an empty dev-ca.pem replaced the good one.
func TestFullDiskKeepsTheOldFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	if _, err := Generate(dir, []string{"localhost"}, time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), time.Hour); err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, f := range []string{CAFile, CertFile, KeyFile, ClientCertFile, ClientKeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		before[f] = b
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFullDiskChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fullDiskEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("child: %v, want exit 7 after a reported error\n%s", err, out)
	}
	for f, b := range before {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s changed (%d bytes, was %d): %v", f, len(got), len(b), err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
