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
	"github.com/aunsorm/timenode/cmd/internal/proccpu"
)

// chronyServer is a reference chronyd serving NTP on loopback. It runs with
// -x, so it never touches the host clock.
type chronyServer struct {
	once   sync.Once
	cmd    *exec.Cmd
	dir    string
	addr   netip.AddrPort
	keAddr string        // NTS-KE host:port, "" without NTS
	done   chan struct{} // closed when chronyd has exited
	err    error         // its exit status, valid once done is closed
}

// chronyConf is a stratum-1 server from the local clock, on loopback only,
// answering all of 127.0.0.0/8 (the mixed load's client addresses), with
// no command port. Without a ratelimit line chronyd does not limit.
const chronyConf = `local stratum 1
port %d
bindaddress 127.0.0.1
allow 127.0.0.0/8
cmdport 0
pidfile %s
driftfile %s
`

// chronyRateLimit matches ntp.DefaultRateLimit as closely as chronyd's
// options allow: a mean interval of 2^0 = 1 s, bursts of 16, and leak 4
// (one limited request in 16 still answered; chronyd has no "never", and
// answering is what the leak is for). clientloglimit gives it the same
// 65536-client table as ours (128 bytes a client), not its default 4096.
const chronyRateLimit = `ratelimit interval 0 burst 16 leak 4
clientloglimit 8388608
`

// chronyNTS serves NTS-KE on its own port with the bench's certificate.
// ntsdumpdir is left out: the server keys need not survive this chronyd.
const chronyNTS = `ntsport %d
ntsservercert %s
ntsserverkey %s
`

// chronyOptions are the variations the load modes need.
type chronyOptions struct {
	rateLimit bool
	pki       *benchPKI // NTS server when set
}

// startChrony writes a configuration into a fresh temporary directory and
// starts chronyd -x -d -f conf on a free loopback port, on cpu (-1:
// anywhere).
func startChrony(path string, o chronyOptions, cpu int) (*chronyServer, error) {
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
	if o.rateLimit {
		body += chronyRateLimit
	}
	var kePort int
	if o.pki != nil {
		if kePort, err = freeTCPPort(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		body += fmt.Sprintf(chronyNTS, kePort, o.pki.certPEM, o.pki.keyPEM)
	}
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
	if err := proccpu.StartPinned(cmd, cpu); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ntpbench: start %s: %w", path, err)
	}
	c := &chronyServer{cmd: cmd, dir: dir, addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), done: make(chan struct{})}
	if kePort != 0 {
		c.keAddr = fmt.Sprintf("127.0.0.1:%d", kePort)
	}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	if err := waitAnswering(c.addr, 5*time.Second, c.done); err != nil {
		out, _ := os.ReadFile(filepath.Join(dir, "chronyd.log"))
		c.stop()
		return nil, fmt.Errorf("ntpbench: chronyd on %s: %w\n%s", c.addr, err, out)
	}
	return c, nil
}

func (c *chronyServer) pid() int { return c.cmd.Process.Pid }

// log returns chronyd's output so far, for error messages.
func (c *chronyServer) log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "chronyd.log"))
	return string(b)
}

// stop terminates chronyd (SIGTERM, then SIGKILL after 5 s) and removes its
// directory. It is safe to call more than once and concurrently.
func (c *chronyServer) stop() {
	c.once.Do(func() {
		child.Stop(c.cmd.Process, c.done, func() { _ = c.cmd.Process.Signal(syscall.SIGTERM) }, 5*time.Second)
		os.RemoveAll(c.dir)
	})
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ntpbench: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
