// Command ntpbench is the NTP server benchmark behind `make bench-ntp`: one
// load generator (sendmmsg/recvmmsg batched, a fixed number of requests in
// flight) drives our server and a chronyd it starts itself, one after the
// other on loopback with the same settings, and prints replies per second,
// median and 99th-percentile round trip for both and their ratio.
//
// chronyd runs with -x (never touches the host clock), "local stratum 1",
// a loopback port, no command port and no rate limit; its configuration,
// pid file and drift file live in a temporary directory removed afterwards,
// and chronyd is stopped on exit, on SIGINT/SIGTERM and (Pdeathsig) when
// ntpbench dies.
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
	"syscall"
	"time"
)

func main() {
	if spec := os.Getenv(envServe); spec != "" {
		os.Exit(serveMain(spec))
	}
	os.Exit(run(os.Args[1:], os.Stdout))
}

type options struct {
	inflight, batch  int
	rounds           int
	serverWorkers    int
	serverBatch      int
	warmup, duration time.Duration
	chronyd          string
	minRatio         float64
	skipChrony       bool
	requestTimeout   time.Duration
}

func run(args []string, out io.Writer) int {
	var o options
	fs := flag.NewFlagSet("ntpbench", flag.ContinueOnError)
	fs.IntVar(&o.inflight, "inflight", 64, "requests kept in flight")
	fs.IntVar(&o.rounds, "rounds", 2, "alternating measurement rounds per server")
	fs.IntVar(&o.batch, "batch", 64, "load generator packets per sendmmsg/recvmmsg")
	fs.IntVar(&o.serverWorkers, "workers", 1, "our server's SO_REUSEPORT sockets (one client socket reaches only one)")
	fs.IntVar(&o.serverBatch, "server-batch", 32, "our server's packets per recvmmsg/sendmmsg (1 = unbatched)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load before measuring")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured load per server")
	fs.DurationVar(&o.requestTimeout, "timeout", 200*time.Millisecond, "a request unanswered this long is lost")
	fs.StringVar(&o.chronyd, "chronyd", "chronyd", "chronyd binary (Debian package chrony)")
	fs.BoolVar(&o.skipChrony, "skip-chrony", false, "benchmark only our server")
	fs.Float64Var(&o.minRatio, "min-ratio", 0, "exit 1 unless ours/chrony replies/s reaches this and our p99 is no worse")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.inflight < 1 || o.rounds < 1 || o.batch < 1 || o.batch > 1024 {
		fmt.Fprintln(os.Stderr, "ntpbench: -inflight and -rounds must be >= 1, -batch 1..1024")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, o, out); err != nil {
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

// bench measures both servers in o.rounds alternating rounds (ours,
// chronyd, ours, ...) so that a change in the machine's background load
// during the run does not favour one of them, and prints the pooled figures.
func bench(ctx context.Context, o options, out io.Writer) error {
	lc := func(addr netip.AddrPort) loadConfig {
		return loadConfig{addr: addr, inflight: o.inflight, batch: o.batch, warmup: o.warmup,
			duration: o.duration, timeout: o.requestTimeout}
	}
	fmt.Fprintf(out, "ntpbench: %d in flight, generator batch %d, %d round(s) of %v warm-up + %v per server, loopback\n",
		o.inflight, o.batch, o.rounds, o.warmup, o.duration)

	ours, err := startOurs(o.serverWorkers, o.serverBatch)
	if err != nil {
		return err
	}
	defer ours.stop()
	var chrony *chronyServer
	if !o.skipChrony {
		path, err := exec.LookPath(o.chronyd)
		if err != nil {
			return fmt.Errorf("ntpbench: %s not found (install the Debian package chrony): %w", o.chronyd, err)
		}
		if chrony, err = startChrony(path); err != nil {
			return err
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
	}

	var oursRes, chronyRes loadResult
	for range o.rounds {
		r, err := runLoad(lc(ours.addr))
		if err != nil {
			return err
		}
		oursRes.merge(r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if chrony == nil {
			continue
		}
		r, err = runLoad(lc(chrony.addr))
		if err != nil {
			return err
		}
		chronyRes.merge(r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	printHeader(out)
	printRow(out, fmt.Sprintf("timenode (workers %d, batch %d)", o.serverWorkers, o.serverBatch), oursRes)
	if chrony == nil {
		return nil
	}
	printRow(out, "chronyd -x (local stratum 1)", chronyRes)

	ratio := oursRes.rate() / chronyRes.rate()
	p99o, p99c := oursRes.percentile(99), chronyRes.percentile(99)
	fmt.Fprintf(out, "ratio timenode/chronyd: replies/s %.2fx, p50 %.2fx, p99 %.2fx\n",
		ratio, ratioDur(oursRes.percentile(50), chronyRes.percentile(50)), ratioDur(p99o, p99c))
	if o.minRatio > 0 && (ratio < o.minRatio || p99o > p99c) {
		return errBelowTarget{fmt.Sprintf("replies/s ratio %.2f (want >= %.2f), p99 %v vs chronyd %v", ratio, o.minRatio, p99o, p99c)}
	}
	return nil
}

func ratioDur(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func printHeader(out io.Writer) {
	fmt.Fprintf(out, "%-34s %12s %10s %10s %8s\n", "server", "replies/s", "p50", "p99", "lost")
}

func printRow(out io.Writer, name string, r loadResult) {
	fmt.Fprintf(out, "%-34s %12.0f %10v %10v %8d\n", name, r.rate(),
		r.percentile(50).Round(100*time.Nanosecond), r.percentile(99).Round(100*time.Nanosecond), r.lost)
}
