package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/child"
	"github.com/aunsorm/timenode/cmd/internal/proccpu"
	"github.com/aunsorm/timenode/netsvc/roughtime"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

// envServe makes roughtimebench re-executed by itself serve Roughtime
// with our server instead of benchmarking, so that the server has a
// process, a Go runtime and a CPU budget of its own. Its value is
// "batchsize,window" (window a Go duration, the server's BatchWindow).
const envServe = "ROUGHTIMEBENCH_SERVE"

// serveSpec is what the child serves.
type serveSpec struct {
	batch  int
	window time.Duration
}

func (s serveSpec) String() string { return fmt.Sprintf("%d,%s", s.batch, s.window) }

func parseServeSpec(v string) (serveSpec, error) {
	var s serveSpec
	b, w, ok := strings.Cut(v, ",")
	if !ok {
		return s, errors.New("want batchsize,window")
	}
	var err error
	if s.batch, err = strconv.Atoi(b); err != nil {
		return s, err
	}
	if s.window, err = time.ParseDuration(w); err != nil {
		return s, err
	}
	return s, nil
}

// serveBound is the error bound the child's clock reports: fixed, and
// synchronized, since a server refuses to answer otherwise.
const serveBound = time.Millisecond

// hostClock is the child's TimeSource: the host clock, always
// synchronized within serveBound. The bench measures throughput, not
// time.
type hostClock struct{}

func (hostClock) Now() (time.Time, time.Duration, bool) { return time.Now(), serveBound, true }

// serveMain runs our server until SIGTERM, SIGINT or stdin closes. It
// prints the address on one line first and, at the end, the server's
// counters on another.
func serveMain(v string) int {
	spec, err := parseServeSpec(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "roughtimebench: %s=%q: %v\n", envServe, v, err)
		return 2
	}
	key, err := signer.NewLockedEd25519(benchSeed, lockedmem.Options{})
	if err != nil && !errors.Is(err, lockedmem.ErrLock) {
		fmt.Fprintln(os.Stderr, "roughtimebench:", err)
		return 1
	}
	defer key.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := roughtime.NewServer(roughtime.Config{Addr: "127.0.0.1:0", TimeSource: hostClock{}, LongTermKey: key,
		BatchSize: spec.batch, BatchWindow: spec.window, Logger: log})
	if err == nil {
		err = srv.Listen()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "roughtimebench:", err)
		return 1
	}
	fmt.Println(srv.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "roughtimebench:", err)
		return 1
	}
	fmt.Println(formatStats(srv.Stats()))
	return 0
}

// formatStats is the child's last line: requests, replies, signatures
// and the drops that happened, by reason.
func formatStats(st roughtime.Stats) string {
	s := fmt.Sprintf("requests %d, replies %d, signatures %d", st.Requests, st.Replies, st.Batches)
	if st.Batches > 0 {
		s += fmt.Sprintf(" (%.1f replies each)", float64(st.Replies)/float64(st.Batches))
	}
	var drops []string
	for r, n := range st.Dropped {
		if n > 0 {
			drops = append(drops, fmt.Sprintf("%s %d", r, n))
		}
	}
	sort.Strings(drops)
	if len(drops) > 0 {
		s += ", dropped: " + strings.Join(drops, ", ")
	}
	return s
}

// server is one server under test in a child process.
type server struct {
	name   string
	addr   netip.AddrPort
	cmd    *exec.Cmd
	stdin  io.WriteCloser // ours: closing it stops the child
	logs   *strings.Builder
	exited chan struct{} // closed when the process is gone
	final  string        // ours: the counters printed at exit
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// alive reports whether the process is still running.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop ends the child: ours by closing its stdin (it prints its counters
// and exits), the testserver by SIGKILL; either gets SIGKILL after 5 s.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	ask := func() { _ = s.cmd.Process.Kill() }
	if s.stdin != nil {
		ask = func() { _ = s.stdin.Close() }
	}
	child.Stop(s.cmd.Process, s.exited, ask, 5*time.Second)
	s.cmd = nil
}

// start runs cmd pinned to cpu, to die with the bench (Pdeathsig).
func (s *server) start(cpu int) error {
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := proccpu.StartPinned(s.cmd, cpu); err != nil {
		return fmt.Errorf("roughtimebench: start %s: %w", s.name, err)
	}
	return nil
}

// watch waits for the child in the background: drain (if any) reads what
// is left of its stdout, which must happen before Wait closes the pipe;
// exited closes when it is gone.
func (s *server) watch(drain func()) {
	s.exited = make(chan struct{})
	go func() {
		if drain != nil {
			drain()
		}
		_ = s.cmd.Wait()
		close(s.exited)
	}()
}

// startOurs starts our server with spec in a child process on cpu.
func startOurs(name string, spec serveSpec, cpu int) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("roughtimebench: find own executable: %w", err)
	}
	s := &server{name: name, cmd: exec.Command(self), logs: new(strings.Builder)}
	s.cmd.Env = append(os.Environ(), envServe+"="+spec.String())
	s.cmd.Stderr = s.logs
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.start(cpu); err != nil {
		return nil, err
	}
	stdout := bufio.NewReader(out)
	line, err := stdout.ReadString('\n')
	// The rest of stdout is the counters it prints at exit.
	s.watch(func() {
		rest, _ := io.ReadAll(stdout)
		s.final = strings.TrimSpace(string(rest))
	})
	if err == nil {
		s.addr, err = netip.ParseAddrPort(strings.TrimSpace(line))
	}
	if err != nil || !s.addr.Addr().Is4() {
		s.stop()
		return nil, fmt.Errorf("roughtimebench: %s address %q: %v; its log:\n%s", name, line, err, s.logs)
	}
	return s, nil
}

// buildTestserver builds Cloudflare's ./cmd/testserver from src into dir,
// as netsvc/roughtime's interop test does: its own module with no
// dependencies, built without reaching for the network.
func buildTestserver(src, dir string) (string, error) {
	if _, err := os.Stat(src + "/cmd/testserver"); err != nil {
		return "", fmt.Errorf("interop peer missing: %w (Cloudflare Roughtime, see shared/interop/README.md)", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = os.Getenv("GOROOT") + "/bin/go"
	}
	out := dir + "/testserver"
	cmd := exec.Command(goBin, "build", "-o", out, "./cmd/testserver")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", src, err, b)
	}
	return out, nil
}

// startTestserver runs the testserver binary on a loopback port that was
// free a moment ago (it does not print its address), with the bench's
// long-term seed, and waits until it answers a verified query.
func startTestserver(ctx context.Context, bin string, cpu int) (*server, error) {
	addr, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	s := &server{name: "testserver", addr: addr, logs: new(strings.Builder)}
	s.cmd = exec.Command(bin, "-addr", addr.String(), "-root-key", fmt.Sprintf("%x", benchSeed))
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.start(cpu); err != nil {
		return nil, err
	}
	s.watch(nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err = roughtime.Query(qctx, addr.String(), benchPublic(), roughtime.VersionDraft11,
			roughtime.QueryOptions{Attempts: 1, Wait: 200 * time.Millisecond})
		cancel()
		if err == nil {
			return s, nil
		}
		if !s.alive() || ctx.Err() != nil || time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("roughtimebench: testserver never answered: %v; its log:\n%s", err, s.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
