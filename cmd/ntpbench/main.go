// Command ntpbench is the NTP server benchmark behind `make bench-ntp`: a
// load generator drives our server and a chronyd it starts itself, one
// after the other on loopback with the same settings, and prints for both
// replies per second, the server's CPU time per second (utime+stime of the
// process and its children, from /proc/PID/stat, before and after), replies
// per server CPU-second, the generator's own CPU, median and 99th
// percentile round trip, and the ratios.
//
// Both servers are pinned to one CPU (-server-cpu) and the generator's
// thread to another (-load-cpu), so that neither server can borrow the
// generator's core. Replies per CPU-second is the figure to compare: on a
// shared machine, or whenever the generator rather than the server is the
// bottleneck, replies/s says more about the generator than the server (see
// docs/SERVING.md, "NTP performance").
//
// Load modes (-modes): batch, one connected socket with -inflight requests
// moved -batch at a time by sendmmsg/recvmmsg; sockets, 64 sockets with one
// request each and a system call per packet; mix, one socket sending from
// 2^20 client addresses in 127.0.0.0/8 plus a few hot ones far over the
// limit, with rate limiting on in both servers; nts, the batch load with
// NTS-protected requests, cookies from each server's own NTS-KE with a
// test CA the bench makes, every reply's authenticator checked.
//
// chronyd runs with -x (never touches the host clock), "local stratum 1",
// a loopback port, no command port and, but in the mix, no rate limit; its
// configuration, pid file and drift file live in a temporary directory
// removed afterwards, and chronyd is stopped on exit, on SIGINT/SIGTERM and
// (Pdeathsig) when ntpbench dies.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/latency"
	"github.com/aunsorm/timenode/cmd/internal/proccpu"
)

func main() {
	if spec := os.Getenv(envServe); spec != "" {
		os.Exit(serveMain(spec))
	}
	os.Exit(run(os.Args[1:], os.Stdout))
}

type options struct {
	modes            string
	inflight, batch  int
	rounds           int
	serverWorkers    int
	serverBatch      int
	serverSendBatch  int
	serverCPU        int
	loadCPU          int
	warmup, duration time.Duration
	chronyd          string
	minRatio         float64
	skipChrony       bool
	requestTimeout   time.Duration
}

func run(args []string, out io.Writer) int {
	var o options
	fs := flag.NewFlagSet("ntpbench", flag.ContinueOnError)
	fs.StringVar(&o.modes, "modes", "batch,sockets,mix,nts", "load modes, comma-separated: batch, sockets, mix, nts")
	fs.IntVar(&o.inflight, "inflight", 64, "requests kept in flight (batch, mix and nts modes; sockets mode uses one socket per request)")
	fs.IntVar(&o.rounds, "rounds", 2, "alternating measurement rounds per server and mode")
	fs.IntVar(&o.batch, "batch", 64, "load generator packets per sendmmsg/recvmmsg")
	fs.IntVar(&o.serverWorkers, "workers", 1, "our server's SO_REUSEPORT sockets (one client socket reaches only one)")
	fs.IntVar(&o.serverBatch, "server-batch", 32, "our server's packets per recvmmsg (1 = unbatched)")
	fs.IntVar(&o.serverSendBatch, "server-send-batch", 0, "our server's replies per sendmmsg (0 = ntp.DefaultSendBatch)")
	fs.IntVar(&o.serverCPU, "server-cpu", 0, "CPU both servers are pinned to (-1: not pinned)")
	fs.IntVar(&o.loadCPU, "load-cpu", 1, "CPU the load generator is pinned to (-1: not pinned)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load before measuring")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured load per server, mode and round")
	fs.DurationVar(&o.requestTimeout, "timeout", 200*time.Millisecond, "a request unanswered this long is lost")
	fs.StringVar(&o.chronyd, "chronyd", "chronyd", "chronyd binary (Debian package chrony)")
	fs.BoolVar(&o.skipChrony, "skip-chrony", false, "benchmark only our server")
	fs.Float64Var(&o.minRatio, "min-ratio", 0, "exit 3 unless ours/chronyd replies per server CPU-second reaches this in every plain NTP mode")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	modes, err := parseModes(o.modes, o.inflight)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ntpbench: -modes %q: %v\n", o.modes, err)
		return 2
	}
	if o.inflight < 1 || o.inflight > maxSock || o.rounds < 1 || o.batch < 1 || o.batch > 1024 {
		fmt.Fprintf(os.Stderr, "ntpbench: -inflight must be 1..%d, -rounds >= 1, -batch 1..1024\n", maxSock)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, o, modes, out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		var low errBelowTarget
		if errors.As(err, &low) {
			return 3
		}
		return 1
	}
	return 0
}

// errBelowTarget is returned when -min-ratio is set and missed; ntpbench
// then exits 3 (1 is for failures to run the benchmark at all).
type errBelowTarget struct{ msg string }

func (e errBelowTarget) Error() string { return "ntpbench: below target: " + e.msg }

// benchMode is one load shape and server setting.
type benchMode struct {
	name      string
	mode      loadMode
	inflight  int
	rateLimit bool // both servers limit per client address
	nts       bool // NTS-protected requests
}

// parseModes turns the -modes list into the modes to run, in that order.
func parseModes(list string, inflight int) ([]benchMode, error) {
	var modes []benchMode
	for _, m := range strings.Split(list, ",") {
		switch strings.TrimSpace(m) {
		case "batch":
			modes = append(modes, benchMode{name: fmt.Sprintf("batch%d", inflight), mode: modeBatch, inflight: inflight})
		case "sockets":
			modes = append(modes, benchMode{name: "sockets64", mode: modeSockets, inflight: 64})
		case "mix":
			modes = append(modes, benchMode{name: "mix", mode: modeMix, inflight: inflight, rateLimit: true})
		case "nts":
			modes = append(modes, benchMode{name: fmt.Sprintf("nts-batch%d", inflight), mode: modeBatch, inflight: inflight, nts: true})
		default:
			return nil, fmt.Errorf("unknown mode %q", m)
		}
	}
	return modes, nil
}

// modeResult is one mode's pooled figures.
type modeResult struct {
	mode         benchMode
	ours, chrony loadResult
	haveChrony   bool
	oursCPUs     string // CPUs the server was allowed, as the kernel says
	chronyCPUs   string
}

// bench measures every mode in turn: both servers started for it, then
// o.rounds alternating rounds (ours, chronyd, ours, ...) so that a change
// in the machine's background load during the run does not favour one of
// them; then it prints the table and the targets.
func bench(ctx context.Context, o options, modes []benchMode, out io.Writer) error {
	fmt.Fprintf(out, "ntpbench: generator batch %d, %d round(s) of %v warm-up + %v per server and mode, loopback; servers on CPU %d, generator on CPU %d (-1: not pinned)\n",
		o.batch, o.rounds, o.warmup, o.duration, o.serverCPU, o.loadCPU)
	chronyPath := ""
	if !o.skipChrony {
		path, err := exec.LookPath(o.chronyd)
		if err != nil {
			return fmt.Errorf("ntpbench: %s not found (install the Debian package chrony): %w", o.chronyd, err)
		}
		chronyPath = path
	}
	var pki *benchPKI
	for _, m := range modes {
		if m.nts && pki == nil {
			dir, err := os.MkdirTemp("", "ntpbench-pki-")
			if err != nil {
				return fmt.Errorf("ntpbench: pki dir: %w", err)
			}
			defer os.RemoveAll(dir)
			if err := os.Chmod(dir, 0o755); err != nil {
				return err
			}
			if pki, err = newBenchPKI(dir, time.Now()); err != nil {
				return err
			}
		}
	}
	var results []modeResult
	for _, m := range modes {
		r, err := benchOne(ctx, o, m, chronyPath, pki)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	printTable(out, results)
	return checkTargets(out, o, results)
}

// benchOne runs one mode against both servers.
func benchOne(ctx context.Context, o options, m benchMode, chronyPath string, pki *benchPKI) (modeResult, error) {
	res := modeResult{mode: m}
	spec := serveSpec{workers: o.serverWorkers, batch: o.serverBatch, sendBatch: o.serverSendBatch, rateLimit: m.rateLimit}
	copts := chronyOptions{rateLimit: m.rateLimit}
	if m.nts {
		spec.cert, spec.key = pki.certPEM, pki.keyPEM
		copts.pki = pki
	}
	ours, err := startOurs(spec, o.serverCPU)
	if err != nil {
		return res, err
	}
	defer ours.stop()
	res.oursCPUs = proccpu.AllowedCPUs(ours.pid())
	var chrony *chronyServer
	if chronyPath != "" {
		if chrony, err = startChrony(chronyPath, copts, o.serverCPU); err != nil {
			return res, err
		}
		defer chrony.stop()
		stopped := make(chan struct{})
		defer close(stopped)
		go func() {
			select {
			case <-ctx.Done():
				chrony.stop()
			case <-stopped:
			}
		}()
		res.haveChrony = true
		res.chronyCPUs = proccpu.AllowedCPUs(chrony.pid())
	}
	lc := func(addr netip.AddrPort, pid int, keAddr string) (loadConfig, error) {
		c := loadConfig{addr: addr, mode: m.mode, proto: plainNTP{}, inflight: m.inflight, batch: o.batch,
			warmup: o.warmup, duration: o.duration, timeout: o.requestTimeout, cpu: o.loadCPU, serverPID: pid}
		if m.nts {
			// NTS-KE may take a moment after chronyd answers NTP.
			var s *ntsSession
			var err error
			for try := 0; try < 20; try++ {
				if s, err = keExchange(keAddr, pki.roots, 5*time.Second); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				return c, err
			}
			c.proto = newNTSNTP(s)
		}
		return c, nil
	}
	oursCfg, err := lc(ours.addr, ours.pid(), ours.keAddr)
	if err != nil {
		return res, err
	}
	var chronyCfg loadConfig
	if chrony != nil {
		if chronyCfg, err = lc(chrony.addr, chrony.pid(), chrony.keAddr); err != nil {
			return res, fmt.Errorf("%w\nchronyd log:\n%s", err, chrony.log())
		}
	}
	for range o.rounds {
		r, err := runLoad(oursCfg)
		if err != nil {
			return res, err
		}
		res.ours.merge(r)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if chrony == nil {
			continue
		}
		if r, err = runLoad(chronyCfg); err != nil {
			return res, err
		}
		res.chrony.merge(r)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	return res, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ratioDur(a, b time.Duration) float64 { return ratio(float64(a), float64(b)) }

const rowFormat = "%-13s %-9s %10s %8s %13s %8s %10s %10s %10s %10s %7s %7s %6s %6s\n"

func printTable(out io.Writer, results []modeResult) {
	fmt.Fprintf(out, rowFormat, "mode", "server", "replies/s", "CPU s/s", "replies/CPU-s", "gen CPU", "p50", "p99", "T3→rx p50", "T3→rx p99", "lost", "KoD", "NAK", "bad")
	for _, r := range results {
		printRow(out, r.mode.name, "timenode", r.ours)
		if !r.haveChrony {
			continue
		}
		printRow(out, r.mode.name, "chronyd", r.chrony)
		fmt.Fprintf(out, "%-13s ratio timenode/chronyd: replies/s %.2fx, replies/CPU-s %.2fx, p50 %.2fx, p99 %.2fx, T3→rx p99 %.2fx\n", "",
			ratio(r.ours.Rate(), r.chrony.Rate()), ratio(r.ours.PerCPUSecond(), r.chrony.PerCPUSecond()),
			ratioDur(r.ours.Percentile(50), r.chrony.Percentile(50)), ratioDur(r.ours.Percentile(99), r.chrony.Percentile(99)),
			ratioDur(latency.Percentile(r.ours.txLags, 99), latency.Percentile(r.chrony.txLags, 99)))
	}
	for _, r := range results {
		if r.mode.mode == modeMix {
			fmt.Fprintf(out, "mix: %d ordinary client addresses, 1 request in %d from %d hot ones; hot requests answered: timenode %s, chronyd %s\n",
				mixClients, mixHotEvery, mixHot, share(r.ours.hotAnswer, r.ours.hotSent), share(r.chrony.hotAnswer, r.chrony.hotSent))
		}
	}
	if len(results) > 0 {
		fmt.Fprintf(out, "server CPUs allowed: timenode %s, chronyd %s\n", results[0].oursCPUs, results[0].chronyCPUs)
	}
}

func share(a, b uint64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

func printRow(out io.Writer, mode, name string, r loadResult) {
	fmt.Fprintf(out, rowFormat, mode, name, fmt.Sprintf("%.0f", r.Rate()), fmt.Sprintf("%.2f", r.CPUSeconds()/r.Elapsed.Seconds()),
		fmt.Sprintf("%.0f", r.PerCPUSecond()), fmt.Sprintf("%.2f", r.GenCPU.Seconds()/r.Elapsed.Seconds()), r.Percentile(50).Round(100*time.Nanosecond).String(),
		r.Percentile(99).Round(100*time.Nanosecond).String(),
		latency.Percentile(r.txLags, 50).Round(100*time.Nanosecond).String(), latency.Percentile(r.txLags, 99).Round(100*time.Nanosecond).String(),
		strconv.FormatUint(r.Lost, 10),
		strconv.FormatUint(r.kod, 10), strconv.FormatUint(r.nak, 10), strconv.FormatUint(r.Bad, 10))
}

// checkTargets prints issue 19's targets against the figures and, with
// -min-ratio, fails when a plain NTP mode misses it. A server that sent
// NAKs or unauthentic replies fails the run: its figures mean nothing.
func checkTargets(out io.Writer, o options, results []modeResult) error {
	verdict := func(ok bool) string {
		if ok {
			return "meets"
		}
		return "SHORT"
	}
	var plain *modeResult
	var short []string
	for i := range results {
		r := &results[i]
		if r.ours.nak+r.ours.Bad > 0 || r.chrony.nak+r.chrony.Bad > 0 {
			return fmt.Errorf("ntpbench: %s: NAKs or unauthentic replies (timenode %d/%d, chronyd %d/%d)",
				r.mode.name, r.ours.nak, r.ours.Bad, r.chrony.nak, r.chrony.Bad)
		}
		if r.mode.mode == modeBatch && !r.mode.nts {
			plain = r
		}
		if !r.haveChrony || r.mode.nts {
			continue
		}
		q := ratio(r.ours.PerCPUSecond(), r.chrony.PerCPUSecond())
		fmt.Fprintf(out, "target %-11s timenode/chronyd replies per CPU-second >= 1.5x: %.2fx %s\n", r.mode.name, q, verdict(q >= 1.5))
		if o.minRatio > 0 && q < o.minRatio {
			short = append(short, fmt.Sprintf("%s %.2fx < %.2fx", r.mode.name, q, o.minRatio))
		}
	}
	for _, r := range results {
		if !r.mode.nts {
			continue
		}
		if plain != nil {
			q := ratio(r.ours.Rate(), plain.ours.Rate())
			fmt.Fprintf(out, "target %-11s NTS/plain replies/s >= 0.8x: %.2fx %s (per CPU-second %.2fx)\n", r.mode.name, q, verdict(q >= 0.8),
				ratio(r.ours.PerCPUSecond(), plain.ours.PerCPUSecond()))
		}
		if r.haveChrony {
			q := ratio(r.ours.Rate(), r.chrony.Rate())
			fmt.Fprintf(out, "target %-11s timenode/chronyd NTS replies/s >= 1x: %.2fx %s (per CPU-second %.2fx)\n", r.mode.name, q, verdict(q >= 1),
				ratio(r.ours.PerCPUSecond(), r.chrony.PerCPUSecond()))
		}
	}
	if len(short) > 0 {
		return errBelowTarget{strings.Join(short, ", ")}
	}
	return nil
}
