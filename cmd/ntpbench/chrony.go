package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/child"
)

// chronyServer is a reference chronyd serving NTP on loopback. It runs with
// -x, so it never touches the host clock.
type chronyServer struct {
	once sync.Once
	cmd  *exec.Cmd
	dir  string
	addr netip.AddrPort
	done chan struct{} // closed when chronyd has exited
	err  error         // its exit status, valid once done is closed
}

// chronyConf is a stratum-1 server from the local clock, on loopback only,
// with no command port and no rate limiting (ratelimit is off by default).
const chronyConf = `local stratum 1
port %d
bindaddress 127.0.0.1
allow 127.0.0.1
cmdport 0
pidfile %s
driftfile %s
`

// startChrony writes a configuration into a fresh temporary directory and
// starts chronyd -x -d -f conf on a free loopback port.
func startChrony(path string) (*chronyServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ntpbench-chrony-")
	if err != nil {
		return nil, fmt.Errorf("ntpbench: chrony dir: %w", err)
	}
	// chronyd drops to its own user; it must be able to use the directory.
	if err := os.Chmod(dir, 0o777); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ntpbench: chmod %s: %w", dir, err)
	}
	conf := filepath.Join(dir, "chrony.conf")
	body := fmt.Sprintf(chronyConf, port, filepath.Join(dir, "chronyd.pid"), filepath.Join(dir, "drift"))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ntpbench: write %s: %w", conf, err)
	}
	cmd := exec.Command(path, "-x", "-d", "-f", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	log, err := os.Create(filepath.Join(dir, "chronyd.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ntpbench: chrony log: %w", err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ntpbench: start %s: %w", path, err)
	}
	c := &chronyServer{cmd: cmd, dir: dir, addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	if err := waitAnswering(c.addr, 5*time.Second, c.done); err != nil {
		out, _ := os.ReadFile(filepath.Join(dir, "chronyd.log"))
		c.stop()
		return nil, fmt.Errorf("ntpbench: chronyd on %s: %w\n%s", c.addr, err, out)
	}
	return c, nil
}

// stop terminates chronyd (SIGTERM, then SIGKILL after 5 s) and removes its
// directory. It is safe to call more than once and concurrently.
func (c *chronyServer) stop() {
	c.once.Do(func() {
		child.Stop(c.cmd.Process, c.done, func() { _ = c.cmd.Process.Signal(syscall.SIGTERM) }, 5*time.Second)
		os.RemoveAll(c.dir)
	})
}

func freePort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ntpbench: free port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// waitAnswering sends client requests until one is answered, the server
// process exits (exited receives its status) or the timeout passes.
func waitAnswering(addr netip.AddrPort, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	req := make([]byte, pktLen)
	req[0] = 0x23
	req[47] = 1
	buf := make([]byte, 512)
	for {
		select {
		case <-exited:
			return errors.New("exited before answering")
		case <-ctx.Done():
			return errors.New("no answer")
		default:
		}
		_, _ = conn.Write(req)
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := conn.Read(buf); err == nil && n >= pktLen && buf[0]&7 == 4 {
			return nil
		}
	}
}
