// Command servebench is the HTTPS serving benchmark behind
// `make bench-serve`. It builds and starts `timenoded --sim` on loopback
// ports, starts a TLS "hello" server with the same TLS shape (TLS 1.3,
// client certificates verified against the same CA) as the ceiling, in a
// process of its own like the daemon (a copy of servebench run with
// -serve-hello), and drives four targets one after the other with the
// same load generator: N concurrent HTTP/1.1 keep-alive mTLS clients, a
// warm-up, then a fixed measured duration. For each N of -conns it prints
// successful requests per second, median and 99th-percentile latency for
//
//   - nonce-bound attestations (GET /attestation?nonce=<random>),
//   - cached-snapshot attestations (GET /attestation, no nonce),
//   - a hello handler with a body as large as an attestation (5 KiB),
//   - the hello handler (a static 1 KiB body, the ceiling),
//
// and the ratios nonce-bound / ceiling (target 0.8), nonce-bound and
// cached-snapshot / same-size hello, and nonce-bound / cached-snapshot.
// The daemon is stopped (SIGINT, then SIGKILL) on exit, on SIGINT/SIGTERM
// and, through Pdeathsig, when servebench dies; the hello child when its
// stdin closes or servebench dies; the temporary state is removed.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == helloChildFlag {
		os.Exit(serveHelloChild(os.Args[2:], os.Stdin, os.Stdout))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line settings.
type options struct {
	duration, warmup time.Duration
	conns            []int // one table per value
	rounds           int
	daemon           string // prebuilt timenoded; "" builds one
	minRatio         float64
}

// errBelowTarget is returned when -min-ratio is set and not reached.
type errBelowTarget struct{ ratio, min float64 }

func (e errBelowTarget) Error() string {
	return fmt.Sprintf("servebench: nonce-bound / ceiling %.2f is below -min-ratio %.2f", e.ratio, e.min)
}

func run(args []string, out, errOut io.Writer) int {
	var o options
	fs := flag.NewFlagSet("servebench", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured load per target")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load before measuring, per target (connections are opened here)")
	connList := fs.String("conns", "16", "concurrent keep-alive mTLS clients, one connection each; a comma-separated list prints one table per value")
	fs.IntVar(&o.rounds, "rounds", 1, "rounds over all targets, alternating, pooled per target (evens out a shared machine's drift)")
	fs.StringVar(&o.daemon, "daemon", "", "timenoded binary to run (default: go build ./cmd/timenoded into a temporary directory)")
	fs.Float64Var(&o.minRatio, "min-ratio", 0, "exit 3 unless nonce-bound / ceiling requests/s reaches this (0: report only)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, f := range strings.Split(*connList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			o.conns = nil
			break
		}
		o.conns = append(o.conns, n)
	}
	if fs.NArg() > 0 || len(o.conns) == 0 || o.rounds < 1 || o.duration <= 0 || o.warmup < 0 {
		fmt.Fprintln(errOut, "servebench: want -conns N[,N...] each >= 1, -rounds >= 1, -duration > 0, -warmup >= 0 and no arguments")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, o, out, errOut); err != nil {
		fmt.Fprintln(errOut, err)
		var low errBelowTarget
		if errors.As(err, &low) {
			return 3
		}
		return 1
	}
	return 0
}

// bench runs the daemon and the ceiling and prints the table.
func bench(ctx context.Context, o options, out, errOut io.Writer) error {
	dir, err := os.MkdirTemp("", "servebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.daemon
	if bin == "" {
		if bin, err = buildDaemon(ctx, dir); err != nil {
			return err
		}
	}
	d, err := startDaemon(ctx, bin, dir)
	if err != nil {
		return err
	}
	defer d.stop(errOut)
	if err := d.waitHealthy(ctx, 90*time.Second); err != nil {
		return err
	}
	if err := d.checkAttestation(ctx); err != nil {
		return err
	}
	hello, err := startHelloProcess(d.serverCert, d.serverKey, d.caFile)
	if err != nil {
		return err
	}
	defer hello.close()

	daemonURL := "https://" + d.endpoints["https"]
	targets := []target{
		{name: "nonce-bound", url: func(nonce string) string { return daemonURL + "/attestation?nonce=" + nonce }},
		{name: "cached-snapshot", url: func(string) string { return daemonURL + "/attestation" }},
		{name: "hello-5k", url: func(string) string { return "https://" + hello.addr + "/hello-5k" }},
		{name: "hello-ceiling", url: func(string) string { return "https://" + hello.addr + "/hello" }},
	}
	metricsURL := "http://" + d.endpoints["metrics"] + "/metrics"
	var low *errBelowTarget
	var failed error
	for _, conns := range o.conns {
		sigs0, reqs0, statsErr := batchStats(metricsURL)
		results := make([]result, len(targets))
		for round := 0; round < o.rounds; round++ {
			for i, tg := range targets {
				r, err := load(ctx, tg, d.clientTLS, conns, o.warmup, o.duration)
				if err != nil {
					return err
				}
				if r.errors > 0 {
					fmt.Fprintf(errOut, "servebench: %s at %d clients: %d failed requests, first: %v\n", tg.name, conns, r.errors, r.firstErr)
					failed = fmt.Errorf("servebench: %s at %d clients: %d failed requests", tg.name, conns, r.errors)
				}
				results[i] = results[i].merge(r)
			}
		}
		ratio := printTable(out, o, conns, results)
		if sigs1, reqs1, err := batchStats(metricsURL); err == nil && statsErr == nil && sigs1 > sigs0 {
			sigs, reqs := sigs1-sigs0, reqs1-reqs0
			fmt.Fprintf(out, "nonce-bound batching (warm-up included): %.0f requests in %.0f signatures, mean batch %.1f\n", reqs, sigs, reqs/sigs)
		}
		if o.minRatio > 0 && ratio < o.minRatio && low == nil {
			low = &errBelowTarget{ratio: ratio, min: o.minRatio}
		}
		fmt.Fprintln(out)
	}
	if failed != nil {
		return failed
	}
	if low != nil {
		return *low
	}
	return nil
}

// targetRatio is the goal for nonce-bound / ceiling.
const targetRatio = 0.8

// printTable writes the results and returns nonce-bound / ceiling.
func printTable(w io.Writer, o options, conns int, rs []result) float64 {
	fmt.Fprintf(w, "servebench: %d keep-alive mTLS clients (HTTP/1.1), %d round(s) of %v warm-up + %v measured per target, GOMAXPROCS=%d, %s\n",
		conns, o.rounds, o.warmup, o.duration, runtime.GOMAXPROCS(0), revision())
	fmt.Fprintf(w, "%-16s %12s %10s %10s %8s %10s\n", "target", "req/s", "p50", "p99", "errors", "bytes/resp")
	for _, r := range rs {
		fmt.Fprintf(w, "%-16s %12.1f %10s %10s %8d %10d\n", r.name, r.rate(), fmtDur(r.percentile(50)), fmtDur(r.percentile(99)), r.errors, r.bytesPerResp())
	}
	ratio := 0.0
	if c := rs[len(rs)-1].rate(); c > 0 {
		ratio = rs[0].rate() / c
	}
	verdict := "met"
	if ratio < targetRatio {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "nonce-bound / ceiling = %.2f (target >= %.2f: %s)\n", ratio, targetRatio, verdict)
	for _, r := range rs {
		if r.name == "hello-5k" && r.rate() > 0 {
			fmt.Fprintf(w, "nonce-bound / same-size hello = %.2f, cached-snapshot / same-size hello = %.2f (signing vs carrying the signature)\n",
				rs[0].rate()/r.rate(), rs[1].rate()/r.rate())
		}
	}
	if rs[1].rate() > 0 {
		fmt.Fprintf(w, "nonce-bound / cached-snapshot = %.2f (what signing per batch costs: same daemon, same response size)\n", rs[0].rate()/rs[1].rate())
	}
	return ratio
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

// revision names the commit servebench was built from when the build
// recorded it, else the checkout it runs in (GOFLAGS=-buildvcs=false and
// go test record nothing).
func revision() string {
	rev, modified := "", false
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if rev == "" {
		out, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			return "commit unknown"
		}
		rev = strings.TrimSpace(string(out))
		st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
		modified = err != nil || len(bytes.TrimSpace(st)) > 0
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		return "commit " + rev + " (with uncommitted changes)"
	}
	return "commit " + rev
}

// batchStats reads the daemon's signature and batched-request counters.
func batchStats(url string) (sigs, reqs float64, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, perr := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if perr != nil {
			continue
		}
		switch name {
		case "timenode_attestation_signatures_total":
			sigs = v
		case "timenode_attestation_batched_requests_total":
			reqs = v
		}
	}
	return sigs, reqs, nil
}
