package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/proccpu"
	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts"
)

// envServe makes ntpbench re-executed by itself serve NTP with our server
// instead of benchmarking, so that both servers run as separate processes
// and neither shares a Go runtime (or a CPU budget) with the load generator.
// Its value is "workers,batch,sendbatch,ratelimit[,cert.pem,key.pem]": ratelimit 1
// turns ntp.DefaultRateLimit on, and a certificate turns NTS on, with
// NTS-KE on a second loopback port.
const envServe = "NTPBENCH_SERVE"

// serveSpec is what the child serves.
type serveSpec struct {
	workers, batch, sendBatch int
	rateLimit                 bool
	cert, key                 string // NTS when set
}

func (s serveSpec) String() string {
	v := fmt.Sprintf("%d,%d,%d,%d", s.workers, s.batch, s.sendBatch, map[bool]int{false: 0, true: 1}[s.rateLimit])
	if s.cert != "" {
		v += "," + s.cert + "," + s.key
	}
	return v
}

func parseServeSpec(v string) (serveSpec, error) {
	var s serveSpec
	f := strings.Split(v, ",")
	if len(f) != 4 && len(f) != 6 {
		return s, fmt.Errorf("%d fields, want 4 or 6", len(f))
	}
	var err error
	var rl int
	for i, p := range []*int{&s.workers, &s.batch, &s.sendBatch, &rl} {
		if *p, err = strconv.Atoi(f[i]); err != nil {
			return s, err
		}
	}
	s.rateLimit = rl == 1
	if len(f) == 6 {
		s.cert, s.key = f[4], f[5]
	}
	return s, nil
}

// hostClock serves the host clock: the bench measures throughput, not time.
type hostClock struct{}

func (hostClock) Now() time.Time { return time.Now() }

// serveMain runs our server until SIGTERM or stdin closes. It prints the
// NTP address and the NTS-KE address ("-" without NTS) on one line.
func serveMain(spec string) int {
	s, err := parseServeSpec(spec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ntpbench: %s=%q: %v\n", envServe, spec, err)
		return 2
	}
	status := func() ntp.Status {
		return ntp.Status{Synchronized: true, Stratum: 1, RefID: [4]byte{'G', 'P', 'S'}}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := ntp.Config{Addr: "127.0.0.1:0", Workers: s.workers, Batch: s.batch, SendBatch: s.sendBatch}
	if s.rateLimit {
		cfg.RateLimit = ntp.DefaultRateLimit
	}
	// The NTP port must be known before the KE server announces it.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ntpbench:", err)
		return 1
	}
	cfg.Addr = pc.LocalAddr().String()
	pc.Close()
	var ke *nts.KEServer
	if s.cert != "" {
		cert, err := tls.LoadX509KeyPair(s.cert, s.key)
		if err == nil {
			port, _ := strconv.Atoi(cfg.Addr[strings.LastIndexByte(cfg.Addr, ':')+1:])
			ke, err = nts.NewKEServer(nts.Config{Addr: "127.0.0.1:0", Certificates: []tls.Certificate{cert}, NTPPort: port, Log: log})
		}
		if err == nil {
			err = ke.Listen()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ntpbench:", err)
			return 1
		}
		cfg.NTS = ke.Processor()
	}
	srv, err := ntp.NewServer(cfg, hostClock{}, status, log)
	if err == nil {
		err = srv.Listen()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ntpbench:", err)
		return 1
	}
	keAddr := "-"
	if ke != nil {
		keAddr = ke.Addr().String()
	}
	fmt.Printf("%s %s\n", srv.Addr(), keAddr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	if ke != nil {
		go func() { _ = ke.Serve(ctx) }()
	}
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ntpbench:", err)
		return 1
	}
	return 0
}

// ourServer is our NTP server running in a child process.
type ourServer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	addr   netip.AddrPort
	keAddr string // NTS-KE host:port, "" without NTS
}

// startOurs starts the child on cpu (-1: anywhere).
func startOurs(spec serveSpec, cpu int) (*ourServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("ntpbench: find own executable: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envServe+"="+spec.String())
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("ntpbench: server stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("ntpbench: server stdout: %w", err)
	}
	if err := proccpu.StartPinned(cmd, cpu); err != nil {
		return nil, fmt.Errorf("ntpbench: start server: %w", err)
	}
	o := &ourServer{cmd: cmd, stdin: stdin}
	var line, ke string
	if _, err := fmt.Fscanln(stdout, &line, &ke); err != nil {
		o.stop()
		return nil, fmt.Errorf("ntpbench: server address: %w", err)
	}
	o.addr, err = netip.ParseAddrPort(line)
	if err != nil || !o.addr.Addr().Is4() {
		o.stop()
		return nil, fmt.Errorf("ntpbench: server address %q: not IPv4: %v", line, err)
	}
	if ke != "-" {
		o.keAddr = ke
	}
	return o, nil
}

func (o *ourServer) pid() int { return o.cmd.Process.Pid }

func (o *ourServer) stop() {
	if o.cmd == nil {
		return
	}
	_ = o.stdin.Close()
	_ = o.cmd.Wait()
	o.cmd = nil
}
