package ntp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Environment of the helper server process (the test binary re-executed,
// e.g. inside a network namespace).
const (
	envHelper       = "TIMENODE_NTP_TEST_HELPER"
	envHelperAddr   = "TIMENODE_NTP_TEST_ADDR"
	envHelperOffset = "TIMENODE_NTP_TEST_OFFSET"
	envHelperSynced = "TIMENODE_NTP_TEST_SYNCED"
)

func TestMain(m *testing.M) {
	if os.Getenv(envHelper) == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperMain serves NTP on $TIMENODE_NTP_TEST_ADDR from a clock offset from
// the host clock, prints "listening ADDR" and serves until stdin closes,
// so that the server dies with the test that started it.
func helperMain() int {
	off, err := time.ParseDuration(os.Getenv(envHelperOffset))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: offset:", err)
		return 2
	}
	synced := os.Getenv(envHelperSynced) == "1"
	status := func() Status {
		st := lockedStatus()
		st.Synchronized = synced
		return st
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := NewServer(Config{Addr: os.Getenv(envHelperAddr), Workers: 1}, offsetClock{off: off}, status, log)
	if err == nil {
		err = s.Listen()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	fmt.Printf("listening %s\n", s.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := s.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// startHelper runs the helper server through prefix (e.g. "ip netns exec
// NS") and returns the address it bound. The process is stopped at cleanup.
func startHelper(t *testing.T, prefix []string, addr string, off time.Duration, synced bool) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, prefix...), self)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), envHelper+"=1", envHelperAddr+"="+addr,
		envHelperOffset+"="+off.String(), envHelperSynced+"="+map[bool]string{true: "1", false: "0"}[synced])
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %v: %v", args, err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("helper server exited with %v", err)
			}
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("helper server did not stop when its stdin closed")
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	bound, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("helper server did not start: %q, %v", line, err)
	}
	return bound
}

// requireTool returns the path of a program a test needs. Without it the
// test skips, naming the Debian package, except under CI=true where it fails.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: install the Debian package %s", name, debianPackage)
	}
	t.Skipf("%s not found: install the Debian package %s", name, debianPackage)
	return ""
}

func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("must run as root to %s", why)
	}
	t.Skipf("must run as root to %s", why)
}

func parseSeconds(t *testing.T, s string) time.Duration {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("parse seconds %q: %v", s, err)
	}
	return time.Duration(f * float64(time.Second))
}
