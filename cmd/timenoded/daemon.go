package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/version"
	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/netsvc"
	"github.com/aunsorm/timenode/netsvc/devtls"
	"github.com/aunsorm/timenode/netsvc/mtls"
	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts"
	"github.com/aunsorm/timenode/netsvc/roughtime"
	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/netsvc/textfile"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/signer/lockedmem"
	"github.com/aunsorm/timenode/timing"
	"github.com/aunsorm/timenode/timing/integrity"
)

// hardware is the concrete clock, receiver line and PPS the daemon runs on.
type hardware struct {
	clk    clock.Steerable
	serial string     // device the GNSS receiver is read from
	pps    pps.Source // pulse source
	sim    *simWorld  // non-nil in simulation mode
}

// statser is a pulse source that counts its pulses.
type statser interface{ Stats() pps.Stats }

// serve runs the daemon until ctx is done.
func serve(ctx context.Context, cfg *config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.stateDir, 0o700); err != nil {
		return fmt.Errorf("state directory %s: %w", cfg.stateDir, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if err := lockedmem.SetNonDumpable(); err != nil {
		log.Warn("could not make the process non-dumpable", "err", err)
	}
	// Everything the node serves with is validated before the hardware is
	// opened: in production opening it takes over the kernel clock, and a
	// node refusing its keys or TLS material must leave the clock to
	// whoever had it. Reading CLOCK_REALTIME to check validity is harmless.
	now := time.Now
	if cfg.now != nil {
		now = cfg.now
	}
	mat, err := loadMaterial(cfg, now(), log)
	if err != nil {
		return err
	}
	var rtKey *signer.LockedEd25519
	if cfg.roughtimeAddr != "" {
		if rtKey, err = loadRoughtimeKey(cfg, log); err != nil {
			mat.keys.Close()
			return err
		}
		defer rtKey.Close()
	}
	open := openHardware
	if cfg.openHardware != nil {
		open = cfg.openHardware
	}
	hw, err := open(ctx, cfg, log)
	if err != nil {
		mat.keys.Close()
		return err
	}
	defer hw.pps.Close()

	tcfg := timing.DefaultConfig()
	tcfg.Stratum = cfg.stratum
	tcfg.MaxHoldoverBound = cfg.maxHoldover
	tcfg.LockThreshold, tcfg.UnlockThreshold = cfg.lockThreshold, 10*cfg.lockThreshold
	tcfg.NMEAOnlyStratum, tcfg.NMEAOnlyMaxBound = uint8(cfg.nmeaOnlyStratum), cfg.nmeaOnlyBound
	lp := &leapInUse{site: mat.site != ""}
	lp.use(mat.leapPath, mat.leap, hw.clk.Now(), log)
	tcfg.Leap = mat.leap
	keptStability(&tcfg, cfg.stateDir, hw.clk.Now(), log)
	// The discipline steers through a log of its steering, from which
	// the integrity check recovers the free-running oscillator's phase.
	steer := newSteerLog(hw.clk)
	disc := timing.New(tcfg, steer, log)
	lp.disc = disc
	rx := gnss.NewReceiver(gnss.Config{Device: hw.serial, Baud: cfg.baud}, hw.clk, log)
	// ts is the discipline as the servers see it: with the integrity
	// state when it is judged, so every published bound is widened.
	var ts netsvc.TimingSource = disc
	var grd *guard
	// reach is filled in as the witnesses are polled.
	reach := &witnessReach{}
	if cfg.integrityMode != integrityOff && cfg.simWitnesses > 0 {
		sw, err := startSimWitnesses(ctx, cfg.simWitnesses, log)
		if err != nil {
			return err
		}
		cfg.witnesses = append(cfg.witnesses, sw...)
	}
	if cfg.integrityMode != integrityOff {
		grd = newGuard(integrityConfig(cfg, hw, lp), steer, disc, rx.Sky, hw.clk.Now(), log)
		ts = guardedTiming{disc, grd, reach}
		log.Info("GNSS integrity checks", "mode", cfg.integrityMode, "witnesses", len(cfg.witnesses)+len(cfg.ntsWitnesses), "antenna_known", grd.cfg.Position.Known != nil)
	}

	for _, w := range mat.tls.Warnings {
		log.Warn(w)
	}
	if mat.site != "" {
		log.Info("site material loaded", "generation", filepath.Base(mat.site), "allowed_clients", len(mat.policy.Allowed))
	}
	sig := signer.NewSignerSet(mat.keys, hw.clk.Now)
	// A key a reload removes stays on /keys while what it signed may still
	// be verified (max age), with the same again for clients' key caches.
	sig.RetainRemoved(2 * cfg.maxAge)
	defer sig.Close()
	tlsMgr := mtls.NewManager(mat.tls, mat.policy)
	tlsMgr.Log, tlsMgr.Now = log.With("component", "tls"), hw.clk.Now

	metrics := netsvc.NewMetrics(hw.clk, ts, disc.Rejected)
	build := version.Get()
	metrics.RegisterBuildInfo(build.Version(), build.Commit, build.GoVersion)
	if cfg.textfileDir != "" {
		// Only the denial counter's and the update gate's names: a file
		// cannot forge ours.
		metrics.Registry().MustRegister(textfile.New(cfg.textfileDir, "mtls_app_armor_", "timenode_update_"))
	}
	log.Info("timenoded starting", "version", build.Version(), "commit", build.Commit)
	api := &netsvc.API{Clock: hw.clk, Timing: ts, Signer: sig, AuthorityID: cfg.authorityID,
		MaxAge: cfg.maxAge, Log: log.With("component", "api"), Metrics: metrics}
	api.Batcher = signer.NewBatcher(sig, api.Claims, signer.BatchOptions{Refresh: cfg.refresh, Now: hw.clk.Now})
	metrics.RegisterBatcher(api.Batcher)
	handler := api.Handler()
	metricsL := &netsvc.Listener{Name: "metrics", Addr: cfg.metricsAddr, Handler: metrics.Handler()}
	var metricsMgr *mtls.Manager
	if mat.metrics != nil {
		// Any scraper with a certificate from the metrics CA; the app
		// clients' CA and allow-list are a different trust domain.
		metricsMgr = mtls.NewManager(mat.metrics, metricsPolicy)
		metricsMgr.Log, metricsMgr.Now = log.With("component", "metrics-tls"), hw.clk.Now
		metricsL.TLS = metricsMgr.ServerConfig()
		log.Info("metrics over mTLS", "client_cas", len(mat.metrics.CAs))
	}
	listeners := []*netsvc.Listener{
		{Name: "https", Addr: cfg.httpsAddr, TLS: tlsMgr.ServerConfig(), Handler: netsvc.ClientGate(handler, tlsMgr.ClientCertRequired)},
		metricsL,
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
	var ke *nts.KEServer
	if cfg.ntsAddr != "" {
		if cfg.ntpAddr == "" {
			return fmt.Errorf("--nts-ke %s needs the NTP server it hands out cookies for: set --ntp", cfg.ntsAddr)
		}
		// The node's TLS identity, as rotated by reload; NTS-KE asks no
		// client certificate (its clients are NTP clients).
		ke, err = nts.NewKEServer(nts.Config{Addr: cfg.ntsAddr, KeyFile: cfg.ntsKeyFile, Log: log.With("component", "nts-ke"),
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				c := tlsMgr.Material().Cert
				return &c, nil
			}})
		if err == nil {
			err = ke.Listen()
		}
		if err != nil {
			return fmt.Errorf("nts-ke on %s: %w", cfg.ntsAddr, err)
		}
		metrics.RegisterNTS(ke.Stats)
	}
	var ntpSrv *ntp.Server
	if cfg.ntpAddr != "" {
		ntpCfg := ntp.Config{Addr: cfg.ntpAddr, RateLimit: ntp.DefaultRateLimit}
		if ke != nil {
			ntpCfg.NTS = ke.Processor()
		}
		ntpSrv, err = ntp.NewServer(ntpCfg,
			hw.clk, netsvc.NTPStatus(hw.clk, ts, cfg.upstreamRefID), log.With("component", "ntp"))
		if err == nil {
			err = ntpSrv.Listen()
		}
		if err != nil {
			return fmt.Errorf("ntp on %s: %w", cfg.ntpAddr, err)
		}
		metrics.RegisterNTP(ntpSrv.Stats)
	}
	endpoints := map[string]string{"ca": mat.tlsFiles.ClientCA, "state_dir": cfg.stateDir}
	if hw.sim != nil {
		endpoints["ca"] = filepath.Join(cfg.stateDir, devtls.CAFile)
		endpoints["client_cert"] = filepath.Join(cfg.stateDir, devtls.ClientCertFile)
		endpoints["client_key"] = filepath.Join(cfg.stateDir, devtls.ClientKeyFile)
	}
	for _, l := range listeners {
		endpoints[l.Name] = l.Bound().String()
		log.Info("listening", "name", l.Name, "addr", l.Bound().String())
	}
	if cfg.agentAddr != "" {
		ln, err := net.Listen("tcp", cfg.agentAddr)
		if err != nil {
			return fmt.Errorf("agent-check on %s: %w", cfg.agentAddr, err)
		}
		endpoints["agent"] = ln.Addr().String()
		log.Info("listening", "name", "agent-check", "addr", endpoints["agent"])
		go func() {
			if err := netsvc.ServeAgent(ctx, ln, hw.clk, ts); err != nil {
				log.Error("agent-check stopped", "err", err)
			}
		}()
	}
	if ntpSrv != nil {
		endpoints["ntp"] = ntpSrv.Addr().String()
		log.Info("listening", "name", "ntp", "addr", endpoints["ntp"])
		go func() {
			if err := ntpSrv.Serve(ctx); err != nil {
				log.Error("ntp server stopped", "err", err)
			}
		}()
	}
	if ntpSrv != nil {
		api.Services = append(api.Services, netsvc.HealthService{Name: "ntp", Addr: endpoints["ntp"]})
	}
	if ke != nil {
		endpoints["nts-ke"] = ke.Addr().String()
		api.Services = append(api.Services, netsvc.HealthService{Name: "nts-ke", Addr: endpoints["nts-ke"]})
		log.Info("listening", "name", "nts-ke", "addr", endpoints["nts-ke"])
		go func() {
			if err := ke.Serve(ctx); err != nil {
				log.Error("nts-ke server stopped", "err", err)
			}
		}()
	}
	if rtKey != nil {
		rt, err := roughtime.NewServer(roughtime.Config{Addr: cfg.roughtimeAddr, TimeSource: netsvc.RoughtimeSource(hw.clk, ts),
			LongTermKey: rtKey, OnlineKeyLock: lockedmem.Options{RequireLock: cfg.production}, Logger: log.With("component", "roughtime")})
		if err == nil {
			err = rt.Listen()
		}
		if err != nil {
			return fmt.Errorf("roughtime on %s: %w", cfg.roughtimeAddr, err)
		}
		metrics.RegisterRoughtime(rt.Stats)
		endpoints["roughtime"] = rt.Addr().String()
		pub := base64.StdEncoding.EncodeToString(rtKey.Public())
		api.Services = append(api.Services, netsvc.HealthService{Name: "roughtime", Addr: endpoints["roughtime"], PublicKey: pub})
		log.Info("listening", "name", "roughtime", "addr", endpoints["roughtime"], "public_key", pub)
		go func() {
			if err := rt.Serve(ctx); err != nil {
				log.Error("roughtime server stopped", "err", err)
			}
		}()
	}
	if err := writeEndpoints(cfg.stateDir, endpoints); err != nil {
		return err
	}

	pulses := make(chan pps.Pulse, 4)
	fixes := make(chan gnss.Fix, 4)
	hwm := netsvc.Hardware{GNSS: rx.Stats, Sky: rx.Sky, PPSQuality: pps.QualityKernel}
	api.Receiver = rx // /health's receiver view
	if cfg.ppsGPIO != "" {
		hwm.PPSQuality = pps.QualityGPIO
	}
	if s, ok := hw.pps.(statser); ok {
		hwm.PPS = s.Stats
	}
	if hw.sim != nil {
		hwm.PPSQuality = pps.QualitySimulated
	}
	metrics.RegisterHardware(hwm)
	metrics.RegisterTLS(hw.clk, tlsMgr)
	if grd != nil {
		metrics.RegisterIntegrity(hw.clk, netsvc.Integrity{Status: grd.Status, Counts: grd.Counts, Witnesses: grd.Witnesses, Reach: reach.Reach})
	}

	if err := runPanel(ctx, cfg, disc, rx, log); err != nil {
		return err
	}
	// finishing holds the goroutines whose last act at shutdown must be
	// done before the daemon exits: they all stop on ctx.
	var finishing sync.WaitGroup
	defer func() { cancel(); finishing.Wait() }()
	// With integrity checks, pulses and fixes pass the guard, which
	// withholds them from the discipline while GNSS is untrusted.
	rawPulses, rawFixes := pulses, fixes
	// trust hands the NTS witnesses each reload's CA.
	trust := &witnessTrust{}
	if grd != nil {
		rawPulses, rawFixes = make(chan pps.Pulse, 4), make(chan gnss.Fix, 4)
		measured := make(chan integrity.Measurement, 4)
		ws := make([]integrity.Witness, 0, len(cfg.witnesses)+len(cfg.ntsWitnesses))
		for _, w := range cfg.witnesses {
			ws = append(ws, newRoughtimeWitness(w, hw.clk.Now)) // the clock being checked
		}
		for _, addr := range cfg.ntsWitnesses {
			w, c, err := newNTSWitness(addr, mat.witnessRoots, hw.clk.Now)
			if err != nil {
				return fmt.Errorf("--witness-nts %q: %w", addr, err)
			}
			ws = append(ws, w)
			trust.clients = append(trust.clients, c)
		}
		trust.use(mat.witnessCA, mat.witnessRoots, log)
		reach.list(ws) // before the first scrape can ask
		go pollWitnesses(ctx, ws, cfg.witnessInterval, measured, reach, log)
		judge := time.NewTicker(time.Second)
		defer judge.Stop()
		// The guard writes the witness history at shutdown.
		finishing.Go(func() { grd.run(ctx, rawPulses, rawFixes, measured, pulses, fixes, judge.C, hw.clk.Now) })
	}
	go timing.FeedPulses(ctx, hw.pps, rawPulses, log)
	go func() {
		if err := rx.Run(ctx, rawFixes); err != nil {
			log.Error("gnss receiver stopped", "err", err)
		}
	}()
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	// At shutdown the discipline leaves the kernel clock at its frequency
	// estimate for the next start.
	finishing.Go(func() { _ = disc.Run(ctx, pulses, fixes, ticker.C) })
	// The stability is saved at shutdown.
	finishing.Go(func() {
		keepStability(ctx, cfg.stateDir, disc, func() *integrity.Status {
			if grd == nil {
				return nil
			}
			return grd.Status()
		}, hw.clk.Now, log)
	})
	go announceReady(ctx, api, cfg, endpoints, log)
	go handleReloads(ctx, cfg, reloadable{tls: tlsMgr, sig: sig, nts: ke, metrics: metricsMgr, leap: lp, witnesses: trust}, hw.clk, metrics, log)
	go watchdog(ctx, cfg, disc, log)
	if err := cfg.notify.send("READY=1\nSTATUS=serving; clock " + disc.Status().State.String()); err != nil {
		log.Warn("sd_notify failed", "err", err)
	}
	err = netsvc.Serve(ctx, listeners, 10*time.Second)
	_ = cfg.notify.send("STOPPING=1")
	return err
}

// signingKeys says where the signing keys come from. In simulation they
// are development keys generated once into the state directory, so they
// survive restarts and a pinned client keeps working, and only
// development keys are accepted; in production they are files or systemd
// credentials certified by the production CA. On a provisioned appliance
// (siteDir set) the certificates and the CA come from the site material.
func signingKeys(cfg *config, siteDir string, now time.Time, log *slog.Logger) (signer.LoadConfig, error) {
	lc := signer.LoadConfig{Dir: cfg.keyDir, CredentialsDir: cfg.credentialsDir, CertDir: siteDir, Production: cfg.production, Now: now, Log: log}
	caPath := cfg.attestationCA
	if caPath == "" && siteDir != "" {
		caPath = filepath.Join(siteDir, site.AttestationCA)
	}
	if caPath != "" {
		roots, err := attestationRoots(caPath)
		if err != nil {
			return lc, err
		}
		lc.Roots = roots
	}
	if !cfg.sim {
		return lc, nil
	}
	// Simulated time must never carry a production signature: a key
	// directory holding one fails the start, and a SIGHUP reload (same
	// config) is refused.
	lc.CredentialsDir, lc.DevelopmentOnly = "", true
	// A half pair (an interrupted generation) is replaced as well.
	if st, err := keyfile.State(cfg.keyDir, ""); err != nil {
		return lc, err
	} else if st != keyfile.PairComplete {
		var extra []byte
		if cfg.seedFile != "" {
			if extra, err = keyfile.ReadSeedFile(cfg.seedFile, keyfile.DefaultPolicy()); err != nil {
				return lc, err
			}
		}
		rec, err := keyfile.GeneratePair(cfg.keyDir, rand.Reader, keyfile.GenerateOptions{Extra: extra})
		for _, p := range rec.Removed {
			log.Warn("removed what an interrupted key generation left", "path", p)
		}
		if err != nil {
			return lc, err
		}
		log.Info("generated development signing keys", "dir", cfg.keyDir)
	}
	return lc, nil
}

// tlsKeyPolicy is the file policy of the TLS server key: the signing keys'
// (owned by this process's user, no access for others), relaxed as for
// them when the key is a systemd credential.
func tlsKeyPolicy(cfg *config) *keyfile.Policy {
	p := keyfile.DefaultPolicy()
	if cfg.credentialsDir != "" && strings.HasPrefix(cfg.tlsKey, filepath.Clean(cfg.credentialsDir)+string(filepath.Separator)) {
		p.Credentials = true
	}
	return &p
}

// tlsSetup returns the TLS files and client policy. Simulation writes a
// development CA, server and client certificate into the state directory
// and allows the development client.
func tlsSetup(cfg *config, now time.Time) (mtls.Files, mtls.Policy, error) {
	policy := mtls.Policy{Allowed: cfg.allow, RequireClientCert: cfg.requireCert}
	if cfg.sim && cfg.devTLS != nil {
		// Made at start; a reload rereads the same files.
		return *cfg.devTLS, cfg.devPolicy, nil
	}
	if cfg.sim {
		m, err := devtls.Generate(cfg.stateDir, []string{"localhost", "127.0.0.1", "::1"}, now, 24*time.Hour)
		if err != nil {
			return mtls.Files{}, policy, err
		}
		files := mtls.Files{Cert: m.CertPath, Key: m.KeyPath, ClientCA: m.CAPath}
		// Explicit flags override the generated files.
		if cfg.tlsCert != "" {
			files.Cert = cfg.tlsCert
		}
		if cfg.tlsKey != "" {
			files.Key = cfg.tlsKey
		}
		if cfg.clientCA != "" {
			files.ClientCA = cfg.clientCA
		}
		if len(policy.Allowed) == 0 {
			policy.Allowed = []string{devtls.ClientName}
		}
		cfg.devTLS, cfg.devPolicy = &files, policy
		return files, policy, nil
	}
	if cfg.tlsCert == "" || cfg.tlsKey == "" {
		return mtls.Files{}, policy, fmt.Errorf("no TLS certificate: set --tls-cert and --tls-key or provide tls.crt and tls.key as systemd credentials")
	}
	return mtls.Files{Cert: cfg.tlsCert, Key: cfg.tlsKey, ClientCA: cfg.clientCA, KeyPolicy: tlsKeyPolicy(cfg)}, policy, nil
}

// reloadable is what SIGHUP swaps.
type reloadable struct {
	tls *mtls.Manager
	sig *signer.Signer
	nts *nts.KEServer // nil without NTS: its cookie key rotates on reload
	// metrics is /metrics' TLS, nil when it serves plain HTTP: the mode is
	// chosen at start, the certificate and the scrapers' CA rotate.
	metrics *mtls.Manager
	leap    *leapInUse // nil: the leap second list is not reloaded
	// witnesses take the reloaded CA of the NTS witnesses (nil: none).
	witnesses *witnessTrust
}

// metricsPolicy admits any scraper whose certificate the metrics CA
// issued, and asks every one for it.
var metricsPolicy = mtls.Policy{RequireClientCert: true}

// handleReloads reloads TLS material, client policy, signing keys, the
// leap second list and the NTS witnesses' CA on SIGHUP (systemctl
// reload) as one transaction: all of it is read from the same site
// generation and validated first, then swapped together; if any part is
// refused nothing changes, the current set keeps serving, and the
// failure is logged and counted. systemd hears RELOADING=1, then READY=1
// with the outcome.
func handleReloads(ctx context.Context, cfg *config, r reloadable, clk clock.Clock, m *netsvc.Metrics, log *slog.Logger) {
	// One buffered signal coalesces the SIGHUPs that arrive during a
	// reload into one more reload, which reads the newest files: none is
	// lost. A reload cannot block (files are opened without blocking and
	// only regular files are read), so it never holds up the next one.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		_ = cfg.notify.reloading()
		status := reload(cfg, r, clk.Now(), m, log)
		_ = cfg.notify.send("READY=1\nSTATUS=" + status)
	}
}

// reload performs one transactional reload and returns the status line
// for systemd.
func reload(cfg *config, r reloadable, now time.Time, m *netsvc.Metrics, log *slog.Logger) string {
	mat, err := loadMaterial(cfg, now, log)
	if err != nil {
		m.Reloaded(false)
		log.Error("reload refused; nothing changed: keeping the current TLS material and signing keys", "err", err)
		return "reload refused: " + err.Error()
	}
	for _, w := range mat.tls.Warnings {
		log.Warn(w)
	}
	old := r.tls.Material()
	before := keyIDs(r.sig.Keys())
	r.tls.Swap(mat.tls, mat.policy)
	switch {
	case r.metrics != nil && mat.metrics != nil:
		r.metrics.Swap(mat.metrics, metricsPolicy)
	case (r.metrics != nil) != (mat.metrics != nil):
		log.Warn("the metrics CA was added or removed: /metrics changes between plain HTTP and mTLS at the next restart")
	}
	if err := r.sig.Swap(mat.keys); err != nil {
		log.Warn("wiping the previous signing keys", "err", err)
	}
	after := keyIDs(r.sig.Keys())
	tlsChanged := !old.Leaf.Equal(mat.tls.Leaf) || old.CABundleSHA256 != mat.tls.CABundleSHA256
	// One rotation event for the TLS material and one for the key set,
	// as the metric has always counted them.
	if tlsChanged {
		m.Reloaded(true)
		log.Info("rotated TLS material", "cert_not_after", mat.tls.Leaf.NotAfter, "ca_bundle_sha256", mat.tls.CABundleSHA256)
	}
	if after != before {
		m.Reloaded(true)
		log.Info("rotated signing keys", "before", before, "after", after)
	}
	if mat.site != "" {
		log.Info("site material loaded", "generation", filepath.Base(mat.site), "allowed_clients", len(mat.policy.Allowed))
	}
	if r.leap != nil {
		r.leap.use(mat.leapPath, mat.leap, now, log)
	}
	r.witnesses.use(mat.witnessCA, mat.witnessRoots, log)
	if r.nts != nil {
		// A reload is when an operator expects keys to turn over: new
		// cookies are sealed with a fresh key, old ones stay valid for
		// the grace period.
		if err := r.nts.Rotate(); err != nil {
			log.Warn("NTS cookie key not rotated", "err", err)
		} else {
			log.Info("rotated the NTS cookie key")
		}
	}
	return "reloaded"
}

// keyIDs lists published key ids, to tell a rotation from a reload of
// the same keys.
func keyIDs(keys []signer.PublicKey) string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return strings.Join(ids, ",")
}

// watchdog pings systemd at half WatchdogSec, but only while the
// discipline loop is alive: a wedged daemon gets restarted.
func watchdog(ctx context.Context, cfg *config, disc *timing.Discipline, log *slog.Logger) {
	if cfg.watchdog <= 0 {
		return
	}
	t := time.NewTicker(cfg.watchdog)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if age := now.Sub(disc.LastTick()); age > 5*time.Second {
				log.Error("discipline loop stalled; withholding watchdog ping", "stalled_for", age)
				continue
			}
			st := disc.Status()
			_ = cfg.notify.send(fmt.Sprintf("WATCHDOG=1\nSTATUS=clock %s, bound %v", st.State, st.BoundAt(disc.LastTick())))
		}
	}
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
timenode simulation is serving (mTLS: use the development client certificate). Try:
  curl --cacert %[1]s --cert %[4]s --key %[5]s https://%[2]s/attestation?nonce=00112233
  curl --cacert %[1]s -H 'X-Aunsorm-Mesh: gateway' https://%[2]s/health
  bin/timenodectl attestation verify https://%[2]s/attestation --cacert %[1]s --cert %[4]s --key %[5]s
  curl http://%[3]s/metrics
`, eps["ca"], eps["https"], eps["metrics"], eps["client_cert"], eps["client_key"])
	}
}

// guardedTiming is the discipline with its integrity state, for the
// servers (netsvc.IntegritySource).
type guardedTiming struct {
	*timing.Discipline
	g     *guard
	reach *witnessReach
}

// Integrity implements netsvc.IntegritySource.
func (t guardedTiming) Integrity() *integrity.Status { return t.g.Status() }

// WitnessReach implements netsvc.WitnessReachSource.
func (t guardedTiming) WitnessReach() []netsvc.WitnessReach { return t.reach.Reach() }

var (
	_ netsvc.IntegritySource    = guardedTiming{}
	_ netsvc.WitnessReachSource = guardedTiming{}
)

// integrityConfig picks the oscillator model and the antenna: the
// simulation's own (its oscillator's model unless --oscillator was
// given), or the configured oscillator class and the surveyed position;
// the receiver's GPS−UTC is checked against leapTable.
// integrityMemoryFile, in the state directory, keeps the integrity state
// and the surveyed antenna across restarts; removing it (and restarting)
// is how an operator clears a remembered distrust.
const integrityMemoryFile = "integrity.json"

func integrityConfig(cfg *config, hw *hardware, leapTable integrity.LeapTable) guardConfig {
	model, q, antenna := cfg.oscillator, pps.QualityKernel, cfg.antenna
	if cfg.ppsGPIO != "" {
		q = pps.QualityGPIO
	}
	if hw.sim != nil {
		q = pps.QualitySimulated
		if !cfg.oscillatorSet {
			model = simModel
		}
		if antenna == nil {
			antenna = &integrity.Fix{LatDeg: simAntenna.Lat, LonDeg: simAntenna.Lon, AltM: simAntenna.Alt, Valid: true}
		}
	}
	gc := guardConfigFor(cfg, model, q, antenna, nil)
	gc.Receiver.Leap = leapTable // the list in use, which a reload replaces
	gc.MemoryPath = filepath.Join(cfg.stateDir, integrityMemoryFile)
	return gc
}
