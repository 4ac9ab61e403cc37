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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/signer/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func init() {
	registerLeaf("refresh", leaf{args: noArgs,
		summary: "Clock Refresh Service sidecar: keep a verified attestation, serve /health and /metrics",
		help: `Settings come from the environment (docs/CONFIGURATION.md):
  AUNSORM_CLOCK_REFRESH_URL            the node's https .../attestation (required)
  AUNSORM_CALIBRATION_FINGERPRINT      pinned attestation certificate fingerprint(s)
  AUNSORM_CLOCK_REFRESH_INTERVAL_SECS  fetch interval (default 15)
  AUNSORM_CLOCK_MAX_AGE_SECS           oldest attestation served as ok (default 30)
TLS material not given by flag is taken from $CREDENTIALS_DIRECTORY when
systemd (LoadCredential=) or a container runtime sets it: refresh-ca.pem,
refresh-client.crt, refresh-client.key, refresh-attestation-ca.pem.`,
		flags: refreshFlags})
}

// refreshOptions are the sidecar's flags.
type refreshOptions struct {
	listen, cacert, cert, key, attCA string
	production, edOnly               bool
}

// refreshCredentials names the files a credentials directory may hold,
// for the flags left empty.
var refreshCredentials = []struct {
	file string
	opt  func(o *refreshOptions) *string
}{
	{"refresh-ca.pem", func(o *refreshOptions) *string { return &o.cacert }},
	{"refresh-client.crt", func(o *refreshOptions) *string { return &o.cert }},
	{"refresh-client.key", func(o *refreshOptions) *string { return &o.key }},
	{"refresh-attestation-ca.pem", func(o *refreshOptions) *string { return &o.attCA }},
}

func refreshFlags(fs *flag.FlagSet) runFunc {
	var o refreshOptions
	fs.StringVar(&o.listen, "listen", "127.0.0.1:50011", "address for /health and /metrics")
	fs.StringVar(&o.cacert, "cacert", "", "CA bundle (PEM) for the server's TLS certificate (default: $CREDENTIALS_DIRECTORY/refresh-ca.pem, else the system roots)")
	fs.StringVar(&o.cert, "cert", "", "client certificate (PEM) for mTLS (default: $CREDENTIALS_DIRECTORY/refresh-client.crt)")
	fs.StringVar(&o.key, "key", "", "client certificate key (PEM) for mTLS (default: $CREDENTIALS_DIRECTORY/refresh-client.key)")
	fs.StringVar(&o.attCA, "attestation-ca", "", "production CA (PEM) that attestation certificates must chain to (default: $CREDENTIALS_DIRECTORY/refresh-attestation-ca.pem)")
	fs.BoolVar(&o.production, "production", false, "reject development keys and certificates; require fingerprint and CA")
	fs.BoolVar(&o.edOnly, "ed25519-only", false, "skip the ML-DSA-65 signature (old clients)")
	return func(_ []string, stdout, stderr io.Writer) int {
		cfg, err := refreshConfig(o, os.Getenv)
		if err != nil {
			return usageErr(stderr, "timenodectl refresh", "%v", err)
		}
		return runRefresh(cfg, o.listen, stderr)
	}
}

// refreshConfig reads the sidecar's environment (names from the runbook)
// and flags.
func refreshConfig(o refreshOptions, getenv func(string) string) (client.Config, error) {
	if dir := getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		for _, c := range refreshCredentials {
			p := filepath.Join(dir, c.file)
			if v := c.opt(&o); *v == "" && fileExists(p) {
				*v = p
			}
		}
	}
	cfg := client.Config{URL: getenv("AUNSORM_CLOCK_REFRESH_URL"), TLSCAFile: o.cacert, TLSCertFile: o.cert, TLSKeyFile: o.key, Production: o.production, Ed25519Only: o.edOnly}
	if cfg.URL == "" {
		return cfg, errors.New("AUNSORM_CLOCK_REFRESH_URL is not set")
	}
	for _, p := range strings.FieldsFunc(getenv("AUNSORM_CALIBRATION_FINGERPRINT"), func(r rune) bool { return r == ',' || r == ' ' }) {
		cfg.Pins = append(cfg.Pins, p)
	}
	var err error
	if cfg.Interval, err = secondsEnv(getenv, "AUNSORM_CLOCK_REFRESH_INTERVAL_SECS", 15); err != nil {
		return cfg, err
	}
	if cfg.MaxAge, err = secondsEnv(getenv, "AUNSORM_CLOCK_MAX_AGE_SECS", 30); err != nil {
		return cfg, err
	}
	if o.attCA != "" {
		b, err := os.ReadFile(o.attCA)
		if err != nil {
			return cfg, fmt.Errorf("--attestation-ca: %w", err)
		}
		cfg.Roots = x509.NewCertPool()
		if !cfg.Roots.AppendCertsFromPEM(b) {
			return cfg, fmt.Errorf("--attestation-ca %s: no PEM certificate", o.attCA)
		}
	}
	return cfg, nil
}

// fileExists reports whether p names an existing file.
func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
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

// runRefresh runs the sidecar until SIGTERM or SIGINT.
func runRefresh(cfg client.Config, listen string, stderr io.Writer) int {
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
