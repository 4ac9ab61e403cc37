package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/proccpu"
	"github.com/aunsorm/timenode/netsvc/roughtime"
)

func main() {
	if spec := os.Getenv(envServe); spec != "" {
		os.Exit(serveMain(spec))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	rounds           int
	warmup, duration time.Duration
	inflight, mmsg   int
	batch            int
	window           time.Duration
	serverCPU        int
	loadCPU          int
	testserver       string
	testserverSrc    string
	versions         string
	verifyEvery      int
	timeout          time.Duration
}

// errFlags is a flag that parsed but makes no sense; run exits 2.
type errFlags struct{ msg string }

func (e errFlags) Error() string { return "roughtimebench: " + e.msg }

// run is the command: the table goes to out, errors to errOut. It
// returns the exit code: 0, 1 when the bench could not run or a reply
// failed its checks, 2 for bad flags.
func run(args []string, out, errOut io.Writer) int {
	var o options
	fs := flag.NewFlagSet("roughtimebench", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.IntVar(&o.rounds, "rounds", 2, "alternating measurement rounds per server")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load before measuring, every round")
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "measured load per server and round")
	fs.IntVar(&o.inflight, "inflight", 64, "requests kept in flight")
	fs.IntVar(&o.mmsg, "mmsg", 32, "load generator packets per sendmmsg/recvmmsg")
	fs.IntVar(&o.batch, "batch", 64, "our batched server's BatchSize (2..512); the other row is BatchSize 1")
	fs.DurationVar(&o.window, "batch-window", 0, "our batched server's BatchWindow (0: batch only what is queued)")
	fs.IntVar(&o.serverCPU, "server-cpu", 0, "CPU every server is pinned to (-1: not pinned)")
	fs.IntVar(&o.loadCPU, "load-cpu", 1, "CPU the load generator is pinned to (-1: not pinned)")
	fs.StringVar(&o.testserver, "testserver", "", "Cloudflare testserver binary (empty: build it from -testserver-src)")
	fs.StringVar(&o.testserverSrc, "testserver-src", "../shared/interop/roughtime", "Cloudflare Roughtime source to build the testserver from (empty, with -testserver empty: leave it out)")
	fs.StringVar(&o.versions, "versions", "draft11,google", "request versions, used in turn: draft11, google")
	fs.IntVar(&o.verifyEvery, "verify-every", 64, "verify every n-th reply in full (1: all)")
	fs.DurationVar(&o.timeout, "timeout", 500*time.Millisecond, "a request unanswered this long is lost")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := bench(ctx, o, out)
	var fe errFlags
	switch {
	case errors.As(err, &fe):
		fmt.Fprintln(errOut, err)
		return 2
	case err != nil:
		fmt.Fprintln(errOut, err)
		return 1
	}
	return 0
}

// check refuses flags that parse but cannot be run.
func (o options) check() ([]roughtime.Version, error) {
	vs, err := parseVersions(o.versions)
	switch {
	case err != nil:
		return nil, errFlags{fmt.Sprintf("-versions %q: %v", o.versions, err)}
	case o.rounds < 1:
		return nil, errFlags{fmt.Sprintf("-rounds %d: want at least 1", o.rounds)}
	case o.inflight < 1 || o.inflight > maxInflight:
		return nil, errFlags{fmt.Sprintf("-inflight %d: want 1..%d", o.inflight, maxInflight)}
	case o.mmsg < 1 || o.mmsg > 1024:
		return nil, errFlags{fmt.Sprintf("-mmsg %d: want 1..1024", o.mmsg)}
	case o.batch < 2 || o.batch > 512:
		return nil, errFlags{fmt.Sprintf("-batch %d: want 2..512 (BatchSize 1 is always measured)", o.batch)}
	case o.window < 0 || o.warmup < 0 || o.duration <= 0 || o.timeout <= 0:
		return nil, errFlags{"-batch-window and -warmup must not be negative, -duration and -timeout must be positive"}
	case o.verifyEvery < 1:
		return nil, errFlags{fmt.Sprintf("-verify-every %d: want at least 1", o.verifyEvery)}
	}
	return vs, nil
}

// result is one server's pooled rounds.
type result struct {
	name  string
	cpus  string // CPUs the server was allowed, as the kernel says
	load  loadResult
	final string // our server's own counters at exit
}

// bench starts the servers, measures them in o.rounds alternating rounds
// (b1, batched, testserver, b1, ...) so that a change in the machine's
// background load does not favour one, prints the table, and fails if
// any reply failed its checks.
func bench(ctx context.Context, o options, out io.Writer) error {
	vs, err := o.check()
	if err != nil {
		return err
	}
	var names []string
	templates := make([]template, len(vs))
	for i, v := range vs {
		names = append(names, versionName(v))
		if templates[i], err = newTemplate(v, benchPublic()); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "roughtimebench: %d in flight, versions %s, %d round(s) of %v warm-up + %v per server, loopback; servers on CPU %d, generator on CPU %d (-1: not pinned); 1 reply in %d verified in full\n",
		o.inflight, strings.Join(names, "+"), o.rounds, o.warmup, o.duration, o.serverCPU, o.loadCPU, o.verifyEvery)

	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, spec := range []serveSpec{{batch: 1}, {batch: o.batch, window: o.window}} {
		s, err := startOurs("timenode-b"+strconv.Itoa(spec.batch), spec, o.serverCPU)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	bin, reason := o.testserver, ""
	if bin == "" && o.testserverSrc == "" {
		reason = "no -testserver and no -testserver-src"
	} else if bin == "" {
		dir, err := os.MkdirTemp("", "roughtimebench-")
		if err != nil {
			return fmt.Errorf("roughtimebench: temp dir: %w", err)
		}
		defer os.RemoveAll(dir)
		if bin, err = buildTestserver(o.testserverSrc, dir); err != nil {
			reason = err.Error()
		}
	}
	if reason == "" {
		s, err := startTestserver(ctx, bin, o.serverCPU)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	} else {
		fmt.Fprintf(out, "testserver left out: %s\n", reason)
	}

	// SIGINT/SIGTERM kill the children at once; the round in progress
	// then ends with ctx's error.
	var procs []*os.Process
	results := make([]result, len(servers))
	for i, s := range servers {
		results[i] = result{name: s.name, cpus: proccpu.AllowedCPUs(s.pid())}
		procs = append(procs, s.cmd.Process)
	}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			for _, p := range procs {
				_ = p.Kill()
			}
		case <-stopped:
		}
	}()
	for range o.rounds {
		for i, s := range servers {
			r, err := runLoad(ctx, loadConfig{addr: s.addr, templates: templates, pub: benchPublic(),
				inflight: o.inflight, mmsg: o.mmsg, verifyEvery: o.verifyEvery, warmup: o.warmup, duration: o.duration,
				timeout: o.timeout, cpu: o.loadCPU, serverPID: s.pid()})
			if ctx.Err() != nil {
				return fmt.Errorf("roughtimebench: interrupted: %w", ctx.Err())
			}
			if err != nil {
				return err
			}
			if !s.alive() {
				return fmt.Errorf("roughtimebench: %s exited during its round; its log:\n%s", s.name, s.logs)
			}
			results[i].load.merge(r)
		}
	}
	for i, s := range servers {
		s.stop()
		results[i].final = s.final
	}
	printTable(out, results)
	var bad []string
	for _, r := range results {
		if r.load.Bad > 0 {
			bad = append(bad, fmt.Sprintf("%s: %d (first: %s)", r.name, r.load.Bad, r.load.firstBad))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("roughtimebench: replies failed verification or were larger than their request: %s", strings.Join(bad, "; "))
	}
	return nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

const rowFormat = "%-14s %10s %8s %13s %8s %10s %10s %6s %6s %9s %4s\n"

func printTable(out io.Writer, results []result) {
	fmt.Fprintf(out, rowFormat, "server", "replies/s", "CPU s/s", "replies/CPU-s", "gen CPU", "p50", "p99", "lost", "stray", "verified", "bad")
	for _, r := range results {
		l := r.load
		fmt.Fprintf(out, rowFormat, r.name, fmt.Sprintf("%.0f", l.Rate()), fmt.Sprintf("%.2f", l.CPUSeconds()/l.Elapsed.Seconds()),
			fmt.Sprintf("%.0f", l.PerCPUSecond()), fmt.Sprintf("%.2f", l.GenCPU.Seconds()/l.Elapsed.Seconds()),
			l.Percentile(50).Round(time.Microsecond).String(), l.Percentile(99).Round(time.Microsecond).String(),
			strconv.FormatUint(l.Lost, 10), strconv.FormatUint(l.Stray, 10), strconv.FormatUint(l.verified, 10), strconv.FormatUint(l.Bad, 10))
	}
	var ts *result
	for i := range results {
		if results[i].name == "testserver" {
			ts = &results[i]
		}
	}
	for _, r := range results {
		if ts == nil || r.name == ts.name {
			continue
		}
		fmt.Fprintf(out, "ratio %s/testserver: replies/s %.2fx, replies/CPU-s %.2fx, p50 %.2fx, p99 %.2fx\n", r.name,
			ratio(r.load.Rate(), ts.load.Rate()), ratio(r.load.PerCPUSecond(), ts.load.PerCPUSecond()),
			ratio(float64(r.load.Percentile(50)), float64(ts.load.Percentile(50))),
			ratio(float64(r.load.Percentile(99)), float64(ts.load.Percentile(99))))
	}
	if len(results) >= 2 {
		fmt.Fprintf(out, "batching: %s/%s replies/s %.2fx, replies/CPU-s %.2fx\n", results[1].name, results[0].name,
			ratio(results[1].load.Rate(), results[0].load.Rate()), ratio(results[1].load.PerCPUSecond(), results[0].load.PerCPUSecond()))
	}
	for _, r := range results {
		line := fmt.Sprintf("server %s: CPUs allowed %s", r.name, r.cpus)
		if r.final != "" {
			line += "; whole run, warm-up included: " + r.final
		}
		fmt.Fprintln(out, line)
	}
}
