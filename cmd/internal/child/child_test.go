package child

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// start runs sh -c script with a stdin pipe kept open, and returns the
// command and a channel closed when it has been waited for.
func start(t *testing.T, script string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	return cmd, exited
}

func TestStop(t *testing.T) {
	tests := []struct {
		name       string
		script     string
		wantSignal syscall.Signal // how the process ended
	}{
		{"obeys SIGTERM", "read x", syscall.SIGTERM},
		{"ignores SIGTERM, killed after the grace period", `trap "" TERM; read x`, syscall.SIGKILL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, exited := start(t, tt.script)
			time.Sleep(100 * time.Millisecond) // let sh install its trap
			Stop(cmd.Process, exited, func() { _ = cmd.Process.Signal(syscall.SIGTERM) }, 300*time.Millisecond)
			select {
			case <-exited:
			default:
				t.Fatal("Stop returned before the process was waited for")
			}
			ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != tt.wantSignal {
				t.Errorf("process ended with %v, want signal %v", cmd.ProcessState, tt.wantSignal)
			}
		})
	}
	t.Run("already exited: nothing is sent", func(t *testing.T) {
		cmd, exited := start(t, "exit 0")
		<-exited
		Stop(cmd.Process, exited, func() { t.Error("ask called for a process that had exited") }, time.Second)
	})
}
