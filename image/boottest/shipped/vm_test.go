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
// the test's reboots), the provisioning medium, a user-mode network in the
// test's own network namespace (see ports), the GNSS receiver on the
// second UART and an emulated parallel port for the PPS.
type vm struct {
	t       testing.TB
	dir     string
	key     string // the administrator's SSH private key
	ports   ports
	cmd     *exec.Cmd
	exited  chan error
	console string
	cancel  context.CancelFunc
	// control is the SSH ControlPath: every command of a boot shares one
	// connection, as an operator's automation does, so the shipped ruleset's
	// per-source limit on new SSH connections (10/minute) is never hit.
	control string
}

// ports is the test's network: qemu runs in a network namespace the test
// creates, joined to the host by one veth pair and with no other route, so
// the guest can reach nothing but the test. The forwards listen on the
// namespace's end (host); the guest sees the test's traffic from the
// host's end (client), as a node sees a site's clients. user-mode
// networking is not restricted: restrict=on also drops the guest's UDP
// replies to a forward, so NTP could never be served.
type ports struct {
	ns                            string // the namespace qemu runs in
	host, client                  string // the namespace's and the host's veth addresses
	ssh, https, ntp, nts, metrics int
}

// newNetwork creates the namespace and the veth pair; both go at cleanup.
func newNetwork(t testing.TB) ports {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the boot test puts qemu in its own network namespace, which needs root (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("%v: apt-get install iproute2", err)
	}
	// A /30 of 10.254.0.0/16 per process, so concurrent runs do not clash.
	id := os.Getpid() % 16384
	p := ports{ns: fmt.Sprintf("tnboot%d", os.Getpid()),
		client: fmt.Sprintf("10.254.%d.%d", id/64, id%64*4+1),
		host:   fmt.Sprintf("10.254.%d.%d", id/64, id%64*4+2),
		ssh:    2222, https: 5443, ntp: 123, nts: 4460, metrics: 9090}
	outer, inner := fmt.Sprintf("tnv%da", id), fmt.Sprintf("tnv%db", id)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", p.ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", outer).Run()
		_ = exec.Command("ip", "netns", "del", p.ns).Run()
	})
	ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", p.ns)
	ip("addr", "add", p.client+"/30", "dev", outer)
	ip("link", "set", outer, "up")
	ip("-n", p.ns, "addr", "add", p.host+"/30", "dev", inner)
	ip("-n", p.ns, "link", "set", inner, "up")
	ip("-n", p.ns, "link", "set", "lo", "up")
	return p
}

const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// boot starts qemu for boot number n. The GNSS receiver simulator on the
// host writes NMEA into the guest's ttyS1 for as long as the guest runs.
func boot(t testing.TB, dir, disk, vars, medium, key string, p ports, n int) *vm {
	t.Helper()
	sock := filepath.Join(dir, fmt.Sprintf("gnss%d.sock", n))
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// A short directory: a socket path must fit in 108 bytes.
	ctl, err := os.MkdirTemp("", "tnssh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ctl) })
	v := &vm{t: t, dir: dir, key: key, ports: p, exited: make(chan error, 1), cancel: cancel,
		console: filepath.Join(dir, fmt.Sprintf("console%d.log", n)), control: filepath.Join(ctl, "%C")}
	fwd := fmt.Sprintf("user,id=n0,hostfwd=tcp:%[1]s:%[2]d-:22,hostfwd=tcp:%[1]s:%[3]d-:5443,hostfwd=udp:%[1]s:%[4]d-:123,hostfwd=tcp:%[1]s:%[5]d-:9090,hostfwd=tcp:%[1]s:%[6]d-:4460",
		p.host, p.ssh, p.https, p.ntp, p.metrics, p.nts)
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
	// ip netns exec execs qemu: the process the test kills is qemu.
	v.cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", p.ns, "qemu-system-x86_64"}, args...)...)
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
	// The background master ends with its connection; ask it to go now.
	_ = exec.Command("ssh", v.sshArgs("-O", "exit", "-p", fmt.Sprint(v.ports.ssh), v.admin())...).Run()
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
		"-o", "ConnectTimeout=20", "-o", "ControlMaster=auto", "-o", "ControlPath=" + v.control,
		"-o", "ControlPersist=yes", "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3"}, extra...)
}

// admin is the administrator's SSH destination.
func (v *vm) admin() string { return "ntp-admin@" + v.ports.host }

// ssh runs a command as the administrator and returns its stdout.
func (v *vm) ssh(cmd string) (string, error) {
	args := v.sshArgs("-p", fmt.Sprint(v.ports.ssh), v.admin(), cmd)
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
	args = append(args, v.admin()+":"+dst)
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
	c := exec.CommandContext(ctx, "ssh", v.sshArgs("-p", fmt.Sprint(v.ports.ssh), v.admin(), cmd)...)
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
