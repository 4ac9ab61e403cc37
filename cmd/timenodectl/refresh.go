package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/signer/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func init() {
	register("refresh", "Clock Refresh Service sidecar: keep a verified attestation, serve /health and /metrics", refreshCmd)
}

// refreshConfig reads the sidecar's environment (names from the runbook)
// and flags.
func refreshConfig(args []string, getenv func(string) string, stderr io.Writer) (client.Config, string, error) {
	fs := flag.NewFlagSet("refresh", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:50011", "address for /health and /metrics")
	cacert := fs.String("cacert", "", "CA bundle (PEM) for the server's TLS certificate (default: system roots)")
	cert := fs.String("cert", "", "client certificate (PEM) for mTLS")
	key := fs.String("key", "", "client certificate key (PEM) for mTLS")
	caPath := fs.String("attestation-ca", "", "production CA (PEM) that attestation certificates must chain to")
	production := fs.Bool("production", false, "reject development keys and certificates; require fingerprint and CA")
	edOnly := fs.Bool("ed25519-only", false, "skip the ML-DSA-65 signature (old clients)")
	if err := fs.Parse(args); err != nil {
		return client.Config{}, "", err
	}
	cfg := client.Config{URL: getenv("AUNSORM_CLOCK_REFRESH_URL"), TLSCAFile: *cacert, TLSCertFile: *cert, TLSKeyFile: *key, Production: *production, Ed25519Only: *edOnly}
	if cfg.URL == "" {
		return cfg, "", errors.New("AUNSORM_CLOCK_REFRESH_URL is not set")
	}
	for _, p := range strings.FieldsFunc(getenv("AUNSORM_CALIBRATION_FINGERPRINT"), func(r rune) bool { return r == ',' || r == ' ' }) {
		cfg.Pins = append(cfg.Pins, p)
	}
	var err error
	if cfg.Interval, err = secondsEnv(getenv, "AUNSORM_CLOCK_REFRESH_INTERVAL_SECS", 15); err != nil {
		return cfg, "", err
	}
	if cfg.MaxAge, err = secondsEnv(getenv, "AUNSORM_CLOCK_MAX_AGE_SECS", 30); err != nil {
		return cfg, "", err
	}
	if *caPath != "" {
		b, err := os.ReadFile(*caPath)
		if err != nil {
			return cfg, "", fmt.Errorf("--attestation-ca: %w", err)
		}
		cfg.Roots = x509.NewCertPool()
		if !cfg.Roots.AppendCertsFromPEM(b) {
			return cfg, "", fmt.Errorf("--attestation-ca %s: no PEM certificate", *caPath)
		}
	}
	return cfg, *listen, nil
}

// secondsEnv reads a positive number of seconds (fractions allowed).
func secondsEnv(getenv func(string) string, name string, def float64) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return time.Duration(def * float64(time.Second)), nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number of seconds", name, v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func refreshCmd(args []string, stdout, stderr io.Writer) int {
	cfg, listen, err := refreshConfig(args, os.Getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "timenodectl refresh: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Log = log
	cl, err := client.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "timenodectl refresh: %v\n", err)
		return 2
	}
	reg := prometheus.NewRegistry()
	if err := cl.Register(reg); err != nil {
		fmt.Fprintf(stderr, "timenodectl refresh: metrics: %v\n", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.Handle("GET /health", cl.HealthHandler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(stderr, "timenodectl refresh: listen %s: %v\n", listen, err)
		return 1
	}
	log.Info("clock refresh sidecar listening", "addr", ln.Addr().String(), "url", cfg.URL,
		"interval_ms", cfg.Interval.Milliseconds(), "max_age_ms", cfg.MaxAge.Milliseconds(), "pins", len(cfg.Pins))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	cl.Run(ctx)
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	return 0
}
