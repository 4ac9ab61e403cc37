package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/netsvc"
	"github.com/aunsorm/timenode/netsvc/devtls"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/timing"
)

// hardware is the concrete clock, receiver line and PPS the daemon runs on.
type hardware struct {
	clk    clock.Steerable
	serial string     // device the GNSS receiver is read from
	pps    pps.Source // pulse source
	sim    *simWorld  // non-nil in simulation mode
}

// serve runs the daemon until ctx is done.
func serve(ctx context.Context, cfg *config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.stateDir, 0o700); err != nil {
		return fmt.Errorf("state directory %s: %w", cfg.stateDir, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	hw, err := openHardware(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer hw.pps.Close()

	tcfg := timing.DefaultConfig()
	tcfg.Stratum = cfg.stratum
	disc := timing.New(tcfg, hw.clk, log)

	keys, tlsCert, caPath, err := loadIdentity(cfg, hw.clk.Now())
	if err != nil {
		return err
	}
	sig := signer.NewSigner(keys)
	log.Info("signing key loaded", "key", keys)

	metrics := netsvc.NewMetrics(hw.clk, disc, disc.Rejected)
	api := &netsvc.API{Clock: hw.clk, Timing: disc, Signer: sig, AuthorityID: cfg.authorityID,
		MaxAge: cfg.maxAge, Log: log.With("component", "api"), Metrics: metrics}
	handler := api.Handler()
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{tlsCert}}
	listeners := []*netsvc.Listener{
		{Name: "https", Addr: cfg.httpsAddr, TLS: tlsConf, Handler: handler},
		{Name: "metrics", Addr: cfg.metricsAddr, Handler: metrics.Handler()},
	}
	if cfg.httpAddr != "" {
		plain := handler
		if hw.sim != nil {
			mux := http.NewServeMux()
			mux.Handle("/", handler)
			mux.Handle("/sim/", hw.sim.controlHandler())
			plain = mux
		}
		listeners = append(listeners, &netsvc.Listener{Name: "http", Addr: cfg.httpAddr, Handler: plain})
	}
	if err := netsvc.Listen(listeners, log); err != nil {
		return err
	}
	endpoints := map[string]string{"ca": caPath, "state_dir": cfg.stateDir}
	for _, l := range listeners {
		endpoints[l.Name] = l.Bound().String()
		log.Info("listening", "name", l.Name, "addr", l.Bound().String())
	}
	if err := writeEndpoints(cfg.stateDir, endpoints); err != nil {
		return err
	}

	pulses := make(chan pps.Pulse, 4)
	fixes := make(chan gnss.Fix, 4)
	rx := gnss.NewReceiver(gnss.Config{Device: hw.serial, Baud: cfg.baud}, hw.clk, log)
	go timing.FeedPulses(ctx, hw.pps, pulses, log)
	go func() {
		if err := rx.Run(ctx, fixes); err != nil {
			log.Error("gnss receiver stopped", "err", err)
		}
	}()
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	go disc.Run(ctx, pulses, fixes, ticker.C)
	go announceReady(ctx, api, cfg, endpoints, log)

	return netsvc.Serve(ctx, listeners, 10*time.Second)
}

// loadIdentity returns the signing keys and the TLS certificate. In
// simulation both are development material made now.
func loadIdentity(cfg *config, now time.Time) (*signer.KeyPair, tls.Certificate, string, error) {
	if !cfg.sim {
		return nil, tls.Certificate{}, "", fmt.Errorf("no signing keys: production key files (NTP_SIGNING_KEY_PATH, $CREDENTIALS_DIRECTORY) are not supported by this build; run with --sim")
	}
	keys, err := signer.GenerateDevelopment(rand.Reader, now, 24*time.Hour)
	if err != nil {
		return nil, tls.Certificate{}, "", err
	}
	m, err := devtls.Generate(cfg.stateDir, []string{"localhost", "127.0.0.1", "::1"}, now, 24*time.Hour)
	if err != nil {
		return nil, tls.Certificate{}, "", err
	}
	return keys, m.Server, m.CAPath, nil
}

// writeEndpoints records the bound addresses so tools and tests that
// started the daemon on port 0 can find it.
func writeEndpoints(dir string, eps map[string]string) error {
	b, err := json.MarshalIndent(eps, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "endpoints.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// announceReady logs the readiness line once the node can serve signed
// time, and in simulation prints where to look.
func announceReady(ctx context.Context, api *netsvc.API, cfg *config, eps map[string]string, log *slog.Logger) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, ok := api.CheckHealth(); ok {
			break
		}
	}
	log.Info(fmt.Sprintf("Clock attestation ready (max_age=%ds)", int(cfg.maxAge/time.Second)))
	if cfg.sim {
		fmt.Fprintf(os.Stderr, `
timenode simulation is serving. Try:
  curl --cacert %[1]s https://%[2]s/health
  curl --cacert %[1]s https://%[2]s/attestation?nonce=00112233
  go run ./cmd/timenodectl attestation verify https://%[2]s/attestation --cacert %[1]s
  curl http://%[3]s/metrics
`, eps["ca"], eps["https"], eps["metrics"])
	}
}
