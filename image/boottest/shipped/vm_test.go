//go:build linux

package shipped

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/sim"
)

// vm is one boot of the appliance under qemu TCG: UEFI firmware, the
// image's own disk (through a copy-on-write overlay that persists across
// the test's reboots), the provisioning medium, a user-mode network that
// reaches nothing but forwards loopback ports, the GNSS receiver on the
// second UART and an emulated parallel port for the PPS.
type vm struct {
	t       *testing.T
	dir     string
	key     string // the administrator's SSH private key
	ports   ports
	cmd     *exec.Cmd
	exited  chan error
	console string
	cancel  context.CancelFunc
}

// ports are the host ends of the forwards.
type ports struct{ ssh, https, ntp, metrics int }

// freePorts picks unused loopback ports for the forwards.
func freePorts(t *testing.T) ports {
	t.Helper()
	var p [4]int
	for i := range p {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	// The NTP forward is UDP: make sure the number is free there too.
	if c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p[2])); err == nil {
		c.Close()
	}
	return ports{ssh: p[0], https: p[1], ntp: p[2], metrics: p[3]}
}

// firmware are OVMF's code and variable store (Debian ovmf).
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// boot starts qemu for boot number n. The GNSS receiver simulator on the
// host writes NMEA into the guest's ttyS1 for as long as the guest runs.
func boot(t *testing.T, dir, disk, vars, medium, key string, p ports, n int) *vm {
	t.Helper()
	sock := filepath.Join(dir, fmt.Sprintf("gnss%d.sock", n))
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	v := &vm{t: t, dir: dir, key: key, ports: p, exited: make(chan error, 1), cancel: cancel,
		console: filepath.Join(dir, fmt.Sprintf("console%d.log", n))}
	fwd := fmt.Sprintf("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22,hostfwd=tcp:127.0.0.1:%d-:5443,hostfwd=udp:127.0.0.1:%d-:123,hostfwd=tcp:127.0.0.1:%d-:9090",
		p.ssh, p.https, p.ntp, p.metrics)
	args := []string{"-accel", "tcg", "-machine", "q35", "-cpu", "max", "-smp", "2", "-m", "1024",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + ovmfCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		"-drive", "file=" + disk + ",format=qcow2,if=virtio",
		"-drive", "file=" + medium + ",format=raw,if=virtio,readonly=on",
		"-netdev", fwd, "-device", "virtio-net-pci,netdev=n0",
		"-chardev", "socket,id=gnss,path=" + sock,
		"-serial", "file:" + v.console, "-serial", "chardev:gnss",
		"-parallel", "null",
		"-display", "none", "-monitor", "none", "-no-reboot"}
	v.cmd = exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	qlog, err := os.Create(filepath.Join(dir, fmt.Sprintf("qemu%d.log", n)))
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.Stdout, v.cmd.Stderr = qlog, qlog
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	go func() { v.exited <- v.cmd.Wait(); qlog.Close() }()
	// qemu connects to the receiver's socket at start.
	go func() {
		defer ln.Close()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		// OVMF takes every 16550 UART as console input, so NMEA during
		// the firmware and boot menu phase reads as keystrokes (a CR
		// picked "reboot into firmware" once). Rack firmware reads only
		// its console port; the receiver stays silent until the kernel
		// has taken over the machine.
		if !v.waitConsole(ctx, "Linux version") {
			return
		}
		rx := sim.NewReceiver(conn, wallClock{}, sim.ReceiverConfig{Delay: 250 * time.Millisecond, Jitter: 20 * time.Millisecond,
			Position: sim.Position{Lat: 41.0151, Lon: 28.9795, Alt: 40}, Seed: uint64(n)})
		_ = rx.Run(ctx)
	}()
	t.Cleanup(v.stop)
	return v
}

// waitConsole polls the guest's console log until it holds marker; false
// if ctx ends first.
func (v *vm) waitConsole(ctx context.Context, marker string) bool {
	for {
		if b, err := os.ReadFile(v.console); err == nil && bytes.Contains(b, []byte(marker)) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// wallClock is the host's clock: the simulated receiver, like a real one,
// tells GNSS time, which the guest does not steer.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// stop kills qemu if it still runs.
func (v *vm) stop() {
	v.cancel()
	select {
	case <-v.exited:
	case <-time.After(10 * time.Second):
	}
}

// waitExit waits for qemu to end by itself (a reboot with -no-reboot).
func (v *vm) waitExit(within time.Duration) error {
	select {
	case err := <-v.exited:
		v.exited <- err
		return nil
	case <-time.After(within):
		return fmt.Errorf("qemu still running after %v", within)
	}
}

// sshArgs are the client options: the test's key only, no host key
// memory (the node makes a new one per flash), no password prompts.
func (v *vm) sshArgs(extra ...string) []string {
	return append([]string{"-i", v.key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
		"-o", "ConnectTimeout=20"}, extra...)
}

// ssh runs a command as the administrator and returns its stdout.
func (v *vm) ssh(cmd string) (string, error) {
	args := v.sshArgs("-p", fmt.Sprint(v.ports.ssh), "ntp-admin@127.0.0.1", cmd)
	c := exec.Command("ssh", args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if err != nil {
		return out.String(), fmt.Errorf("ssh %q: %v: %s", cmd, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// must runs a command over SSH and fails the test if it fails.
func (v *vm) must(cmd string) string {
	v.t.Helper()
	out, err := v.ssh(cmd)
	if err != nil {
		v.t.Fatal(err)
	}
	return out
}

// scp copies local paths into the administrator's home.
func (v *vm) scp(dst string, src ...string) {
	v.t.Helper()
	args := append(v.sshArgs("-r", "-P", fmt.Sprint(v.ports.ssh)), src...)
	args = append(args, "ntp-admin@127.0.0.1:"+dst)
	if out, err := exec.Command("scp", args...).CombinedOutput(); err != nil {
		v.t.Fatalf("scp %v: %v: %s", src, err, out)
	}
}

// waitSSH waits until the administrator can log in.
func (v *vm) waitSSH(within time.Duration) {
	v.t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-v.exited:
			v.exited <- err
			v.t.Fatalf("qemu exited before SSH came up (%v); console tail:\n%s", err, v.consoleTail(40))
		default:
		}
		if _, last = v.ssh("true"); last == nil {
			return
		}
		time.Sleep(3 * time.Second)
	}
	v.t.Fatalf("no SSH within %v: %v; console tail:\n%s", within, last, v.consoleTail(60))
}

// session starts a long-running command over SSH with its stdin and
// stdout connected to the caller (the PPS writer's time transfer).
func (v *vm) session(ctx context.Context, cmd string, stderr io.Writer) (*exec.Cmd, io.WriteCloser, io.ReadCloser, error) {
	c := exec.CommandContext(ctx, "ssh", v.sshArgs("-p", fmt.Sprint(v.ports.ssh), "ntp-admin@127.0.0.1", cmd)...)
	in, err := c.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	c.Stderr = stderr
	if err := c.Start(); err != nil {
		return nil, nil, nil, err
	}
	return c, in, out, nil
}

// consoleTail returns the last n lines of the serial console.
func (v *vm) consoleTail(n int) string {
	b, _ := os.ReadFile(v.console)
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
