package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/netsvc/ntp"
)

// envServe makes ntpbench re-executed by itself serve NTP with our server
// instead of benchmarking, so that both servers run as separate processes
// and neither shares a Go runtime with the load generator.
const envServe = "NTPBENCH_SERVE"

// hostClock serves the host clock: the bench measures throughput, not time.
type hostClock struct{}

func (hostClock) Now() time.Time { return time.Now() }

// serveMain runs our server until SIGTERM or stdin closes; spec is
// "workers,batch".
func serveMain(spec string) int {
	var workers, batch int
	if _, err := fmt.Sscanf(spec, "%d,%d", &workers, &batch); err != nil {
		fmt.Fprintf(os.Stderr, "ntpbench: %s=%q: %v\n", envServe, spec, err)
		return 2
	}
	status := func() ntp.Status {
		return ntp.Status{Synchronized: true, Stratum: 1, RefID: [4]byte{'G', 'P', 'S'}}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// No rate limit: the whole load comes from one address, as for chronyd.
	s, err := ntp.NewServer(ntp.Config{Addr: "127.0.0.1:0", Workers: workers, Batch: batch}, hostClock{}, status, log)
	if err == nil {
		err = s.Listen()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ntpbench:", err)
		return 1
	}
	fmt.Printf("%s\n", s.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	if err := s.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ntpbench:", err)
		return 1
	}
	return 0
}

// ourServer is our NTP server running in a child process.
type ourServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  netip.AddrPort
}

func startOurs(workers, batch int) (*ourServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("ntpbench: find own executable: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envServe+"="+strconv.Itoa(workers)+","+strconv.Itoa(batch))
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
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ntpbench: start server: %w", err)
	}
	o := &ourServer{cmd: cmd, stdin: stdin}
	var line string
	if _, err := fmt.Fscanln(stdout, &line); err != nil {
		o.stop()
		return nil, fmt.Errorf("ntpbench: server address: %w", err)
	}
	o.addr, err = netip.ParseAddrPort(line)
	if err != nil || !o.addr.Addr().Is4() {
		o.stop()
		return nil, fmt.Errorf("ntpbench: server address %q: not IPv4: %v", line, err)
	}
	return o, nil
}

func (o *ourServer) stop() {
	if o.cmd == nil {
		return
	}
	_ = o.stdin.Close()
	_ = o.cmd.Wait()
	o.cmd = nil
}
