//go:build linux

package lockedmem

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// vmLckKB reads the VmLck line of /proc/self/status.
func vmLckKB(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmLck:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatalf("VmLck line %q: %v", sc.Text(), err)
			}
			return n
		}
	}
	t.Fatal("no VmLck in /proc/self/status")
	return 0
}

func TestLockedAndWiped(t *testing.T) {
	before := vmLckKB(t)
	b, err := New(3*4096+1, Options{RequireLock: true})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Locked() {
		t.Fatal("Locked() = false with RequireLock")
	}
	if got, want := vmLckKB(t)-before, 16; got < want {
		t.Errorf("VmLck grew by %d kB, want at least %d", got, want)
	}
	secret := b.Bytes()
	for i := range secret {
		secret[i] = byte(i%251) + 1
	}
	var seen []byte
	beforeUnmap = func(mem []byte) { seen = append([]byte(nil), mem...) }
	defer func() { beforeUnmap = nil }()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 4*4096 {
		t.Fatalf("hook saw %d bytes, want the whole mapping of %d", len(seen), 4*4096)
	}
	for i, c := range seen {
		if c != 0 {
			t.Fatalf("byte %d = %#x after Close, want 0", i, c)
		}
	}
	if got := vmLckKB(t); got > before {
		t.Errorf("VmLck %d kB after Close, was %d before", got, before)
	}
	if b.Bytes() != nil {
		t.Error("Bytes() after Close is not nil")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWipeKeepsBuffer(t *testing.T) {
	b, err := New(64, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	copy(b.Bytes(), "secret")
	b.Wipe()
	for i, c := range b.Bytes() {
		if c != 0 {
			t.Fatalf("byte %d = %#x after Wipe", i, c)
		}
	}
}

func TestPlace(t *testing.T) {
	type flat struct {
		A [16]int32
		B uint64
	}
	type withPtr struct {
		A [4]byte
		P *int
	}
	b, err := New(SizeOf[flat](), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := Place[flat](b)
	if err != nil {
		t.Fatal(err)
	}
	p.B = 0x0102030405060708
	if got := b.Bytes()[64]; got != 0x08 {
		t.Fatalf("byte 64 = %#x after setting B, want 0x08 (B placed at offset 64, little-endian)", got)
	}
	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"pointer type", func() error { _, err := Place[withPtr](b); return err }, "holds Go pointers"},
		{"slice type", func() error { _, err := Place[[]byte](b); return err }, "holds Go pointers"},
		{"too big", func() error { _, err := Place[[8192]byte](b); return err }, "needs 8192 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNonDumpable(t *testing.T) {
	// Run in a child so the test process itself stays dumpable.
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildNonDumpable$")
	cmd.Env = append(os.Environ(), "LOCKEDMEM_CHILD=dump")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "dumpable=false") {
		t.Fatalf("child output %q lacks dumpable=false", out)
	}
}

func TestChildNonDumpable(t *testing.T) {
	if os.Getenv("LOCKEDMEM_CHILD") != "dump" {
		t.Skip("runs only as TestNonDumpable's child")
	}
	if err := SetNonDumpable(); err != nil {
		t.Fatal(err)
	}
	d, err := Dumpable()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dumpable=%t", d)
	os.Stdout.WriteString("dumpable=" + strconv.FormatBool(d) + "\n")
}

// TestMlockLimit checks that a too-small RLIMIT_MEMLOCK is reported as
// ErrLock, and refused with RequireLock. Root ignores the limit
// (CAP_IPC_LOCK), so as root the check runs in a child as nobody.
func TestMlockLimit(t *testing.T) {
	if os.Getenv("LOCKEDMEM_CHILD") == "mlock" {
		runMlockChild(t)
		return
	}
	if os.Geteuid() != 0 {
		runMlockChild(t)
		return
	}
	dir, err := os.MkdirTemp("", "lockedmem")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "lockedmem.test")
	if err := copyFile(os.Args[0], exe); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestMlockLimit$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LOCKEDMEM_CHILD=mlock")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PASS: TestMlockLimit") {
		t.Fatalf("child did not pass:\n%s", out)
	}
}

func runMlockChild(t *testing.T) {
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &old); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: 0, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_MEMLOCK, &old)
	b, err := New(4096, Options{RequireLock: true})
	if b != nil || !errors.Is(err, ErrLock) || !strings.Contains(err.Error(), "RLIMIT_MEMLOCK") {
		t.Fatalf("RequireLock: buffer %v, err %v; want nil and ErrLock naming RLIMIT_MEMLOCK", b, err)
	}
	b, err = New(4096, Options{})
	if b == nil || !errors.Is(err, ErrLock) || b.Locked() {
		t.Fatalf("without RequireLock: buffer %v, err %v; want an unlocked buffer and ErrLock", b, err)
	}
	b.Close()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
