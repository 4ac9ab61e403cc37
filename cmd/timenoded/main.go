// Command timenoded is the timenode daemon: it disciplines the clock from a
// GNSS receiver and its PPS, and serves signed time attestations, health,
// metrics and NTP. With --sim it runs against a simulated receiver, PPS and
// oscillator, with development keys and certificates made on the fly.
//
// This is the only place that reads flags and environment, opens devices,
// wires concrete types, handles signals and speaks sd_notify.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/version"
	"github.com/aunsorm/timenode/netsvc/mtls"
	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/timing/integrity"
)

// config is everything the daemon reads from flags and environment.
type config struct {
	sim, production bool
	httpsAddr       string
	httpAddr        string // plain HTTP (--listen); "" = off
	metricsAddr     string
	ntpAddr         string // "" = no NTP server
	roughtimeAddr   string // "" = no Roughtime server
	ntsAddr         string // "" = no NTS-KE server (NTS on the NTP port)
	ntsKeyFile      string // NTS cookie master keys; "" = memory only
	roughtimeKey    string // the Roughtime long-term key file
	agentAddr       string // HAProxy agent-check TCP address; "" = off
	stateDir        string
	serial          string
	baud            int
	ppsDevice       string
	ppsGPIO         string // GPIO pin of the PPS when there is no kernel PPS driver
	ledGPIO         string // lock-status LED pin (optional)
	resetGPIO       string // receiver reset line pin (optional)
	tlsCert         string
	tlsKey          string
	clientCA        string
	allow           []string // client identities allowed on HTTPS
	requireCert     bool
	authorityID     string
	stratum         uint8
	upstreamRefID   [4]byte // NTP reference id above stratum 1 (NTP_REFERENCE_ADDRESS)
	maxAge          time.Duration
	maxHoldover     time.Duration // error bound past which holdover ends in UNSYNCHRONIZED
	lockThreshold   time.Duration // offsets within it count towards LOCKED; 10x unlocks
	keyDir          string        // signing key directory (NTP_SIGNING_KEY_PATH)
	credentialsDir  string        // systemd credentials ($CREDENTIALS_DIRECTORY)
	attestationCA   string        // production CA that certifies signing keys
	seedFile        string        // extra entropy mixed into generated keys
	refresh         time.Duration // REFRESH_INTERVAL_SECS: snapshot re-sign interval
	leapFile        string        // IETF leap-seconds.list, unless the site generation has one
	textfileDir     string        // Prometheus textfiles exported on /metrics
	metricsClientCA string        // scrapers' CA: /metrics over mTLS
	nmeaOnlyStratum uint          // stratum to serve NMEA-only time at when PPS is lost; 0: never
	nmeaOnlyBound   time.Duration // NMEA-only error bound past which the node stops serving
	integrityMode   string        // --integrity: enforce, monitor or off
	antennaFlag     string        // --antenna-position as given
	oscillatorFlag  string        // --oscillator as given
	antenna         *integrity.Fix
	oscillator      integrity.PowerLaw // the class --oscillator names, without the timestamp term
	oscillatorSet   bool               // --oscillator was given (simulation otherwise judges its own oscillator)
	witnessFlags    repeated           // --witness-roughtime as given
	witnesses       []roughtimeWitness
	ntsWitnesses    repeated // --witness-nts: NTS-KE addresses, HOST:PORT
	ntsWitnessCA    string   // --witness-nts-ca as given; "": the site generation's witness-ca.pem, else the system roots
	witnessInterval time.Duration
	simWitnesses    int // --sim-witnesses: Roughtime servers of the simulation's true time
	notify          *notifier
	devTLS          *mtls.Files // simulation's development TLS files, made once at start
	devPolicy       mtls.Policy
	watchdog        time.Duration // ping interval; 0 without a systemd watchdog
	logLevel        slog.Level
	// Tests inject these; nil means the wall clock and the real hardware.
	now          func() time.Time
	openHardware func(context.Context, *config, *slog.Logger) (*hardware, error)
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("timenoded", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	allow, verbose := declareFlags(fs, c)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return c.finish(fs, *allow, *verbose, getenv)
}

// declareFlags declares every flag of the daemon on fs, filling c; the
// two returned are read after parsing. docs/CONFIGURATION.md is checked
// against what it declares.
func declareFlags(fs *flag.FlagSet, c *config) (allow *string, verbose *bool) {
	fs.BoolVar(&c.sim, "sim", false, "simulation mode: simulated receiver, PPS and oscillator; development keys and certificates")
	fs.BoolVar(&c.production, "production", false, "production mode: refuse development keys and certificates")
	fs.StringVar(&c.httpsAddr, "https", ":5443", "HTTPS listen address")
	fs.StringVar(&c.httpAddr, "listen", "", "plain HTTP listen address (off unless set; 127.0.0.1:5000 in simulation)")
	fs.StringVar(&c.metricsAddr, "metrics", ":9090", "Prometheus metrics listen address")
	fs.StringVar(&c.metricsClientCA, "metrics-client-ca", "", "CA bundle (PEM) of the Prometheus scrapers: /metrics is then served over TLS with the node's certificate and asks every scraper for a client certificate from it (default: the site's metrics-ca.pem if provisioned; else plain HTTP, closed by the firewall to all but the monitoring segment)")
	fs.StringVar(&c.agentAddr, "agent-check", "", "HAProxy agent-check TCP address (answers up N%/drain/down); empty: off")
	fs.StringVar(&c.ntpAddr, "ntp", ":123", "NTP server UDP address (empty: off; 127.0.0.1:11123 in simulation)")
	fs.StringVar(&c.ntsAddr, "nts-ke", "", "NTS-KE TCP address (TLS 1.3 with the node's certificate); NTS then authenticates NTP on --ntp (empty: off; the appliance serves :4460)")
	fs.StringVar(&c.ntsKeyFile, "nts-cookie-keys", "", "NTS cookie master key file, kept across restarts so clients' cookies stay valid (mode 0600, rewritten atomically on every rotation; default STATE/nts-cookie-keys; \"-\": memory only)")
	fs.StringVar(&c.roughtimeAddr, "roughtime", "", "Roughtime server UDP address (empty: off; the appliance serves :2002)")
	fs.StringVar(&c.roughtimeKey, "roughtime-key", "", "Roughtime long-term Ed25519 key (PKCS#8 PEM; default KEYDIR/"+signer.RoughtimeKeyFile+"; made on the fly in simulation)")
	fs.StringVar(&c.stateDir, "state-dir", "", "state directory (default $STATE_DIRECTORY, else /var/lib/timenode)")
	fs.StringVar(&c.serial, "serial", "/dev/gnss0", "GNSS receiver serial device")
	fs.IntVar(&c.baud, "baud", 9600, "GNSS receiver baud rate")
	fs.StringVar(&c.ppsDevice, "pps", "/dev/pps0", "PPS device")
	fs.StringVar(&c.ppsGPIO, "pps-gpio", "", "GPIO pin name of the PPS, for boards without a kernel PPS driver (user-space timestamps, lower quality)")
	fs.StringVar(&c.ledGPIO, "led-gpio", "", "GPIO pin of the front panel lock LED (optional)")
	fs.StringVar(&c.resetGPIO, "reset-gpio", "", "GPIO pin of the receiver's reset line (optional)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "server certificate chain (PEM; default $CREDENTIALS_DIRECTORY/tls.crt)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "server private key (PEM; default $CREDENTIALS_DIRECTORY/tls.key)")
	fs.StringVar(&c.clientCA, "client-ca", "", "client CA bundle for mTLS (PEM; default $CREDENTIALS_DIRECTORY/client-ca.pem)")
	allow = fs.String("mtls-allow", "", "comma-separated client identities (DNS/URI SAN or CN) allowed on HTTPS; empty: any certificate from the client CA")
	fs.BoolVar(&c.requireCert, "require-client-cert", false, "refuse TLS handshakes without a client certificate (the gateway's /health check then needs one too)")
	fs.StringVar(&c.attestationCA, "attestation-ca", "", "production CA certificate(s) (PEM) that must certify the signing keys")
	fs.UintVar(&c.nmeaOnlyStratum, "nmea-only-stratum", 0, "when the PPS is lost but the fix is valid, serve NMEA-only time (millisecond bound) at this stratum; 0: go unsynchronized instead")
	fs.DurationVar(&c.nmeaOnlyBound, "nmea-only-max-bound", 50*time.Millisecond, "NMEA-only error bound past which the node stops serving")
	fs.StringVar(&c.leapFile, "leap-seconds", site.DefaultLeapSeconds, "IETF leap-seconds.list (Debian tzdata); on the appliance the site generation's "+site.LeapSeconds+" replaces it when the bundle carried one (read at start and on reload); empty: none")
	fs.DurationVar(&c.maxHoldover, "max-holdover-bound", time.Millisecond, "error bound past which the node stops serving and claims no stratum")
	fs.DurationVar(&c.lockThreshold, "lock-threshold", 20*time.Microsecond, "offset within which consecutive pulses lock the clock (10x it unlocks): raise it for a PPS with user-space or virtualised timestamps")
	fs.StringVar(&c.textfileDir, "textfile-dir", "", "directory of Prometheus textfiles (*.prom) whose mtls_app_armor_* metrics /metrics exports (the appliance's AppArmor denial count); empty: off")
	// monitor by default until the detectors' thresholds follow the
	// measured timestamp noise: under emulated PPS they distrusted a clean
	// receiver (docs/INTEGRITY.md).
	fs.StringVar(&c.integrityMode, "integrity", integrityMonitor, "GNSS integrity checks (docs/INTEGRITY.md): enforce (an untrusted GNSS is not followed, a suspect one widens the published bound), monitor (judge, log, export and alert only), off")
	fs.StringVar(&c.oscillatorFlag, "oscillator", "tcxo", "oscillator class the PPS integrity check judges the board's oscillator by: tcxo, xo (a cheap crystal with temperature swings), or its datasheet terms wfm=NS_PER_SQRT_S,rw=PPB_PER_SQRT_S,drift=PPB_PER_S (docs/INTEGRITY.md); a class quieter than the oscillator raises false alarms, a noisier one sees less (in simulation: the simulated oscillator's unless given)")
	fs.StringVar(&c.antennaFlag, "antenna-position", "", "surveyed antenna position LAT,LON,ALT (degrees, degrees, metres) the position check holds; empty: survey it in over the first hour (in simulation: the simulated antenna)")
	fs.Var(&c.witnessFlags, "witness-roughtime", "Roughtime server witnessing the node's time from outside the GNSS path, HOST:PORT=BASE64KEY[,google] (repeatable; a quorum of 2 is needed to distrust GNSS)")
	fs.Var(&c.ntsWitnesses, "witness-nts", "NTS-secured NTP server witnessing the node's time from outside the GNSS path, by its NTS-KE address HOST:PORT (usually port 4460; repeatable, counts towards the same quorum as --witness-roughtime)")
	fs.StringVar(&c.ntsWitnessCA, "witness-nts-ca", "", "PEM file of the CA certificates that vouch for the --witness-nts servers (empty: the site generation's "+site.WitnessCA+" when the bundle carried one, else the system roots; reread on reload)")
	fs.DurationVar(&c.witnessInterval, "witness-interval", 64*time.Second, "how often each witness is asked")
	fs.IntVar(&c.simWitnesses, "sim-witnesses", 0, "with --sim: start this many Roughtime servers of the simulation's true time on loopback and use them as witnesses (at most 5; 2 make a quorum), so that the attacks of /sim/* meet the witness check too")
	verbose = fs.Bool("v", false, "debug logging")
	return allow, verbose
}

// finish checks the parsed flags and reads the environment.
func (c *config) finish(fs *flag.FlagSet, allow string, verbose bool, getenv func(string) string) (*config, error) {
	if c.nmeaOnlyStratum > 15 {
		return nil, fmt.Errorf("--nmea-only-stratum %d: want 0 (off) or a stratum from 1 to 15", c.nmeaOnlyStratum)
	}
	if c.lockThreshold <= 0 || c.lockThreshold > 10*time.Millisecond {
		return nil, fmt.Errorf("--lock-threshold %v: want a duration above 0 and at most 10ms", c.lockThreshold)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := c.finishIntegrity(); err != nil {
		return nil, err
	}
	if c.sim && c.production {
		return nil, errors.New("--sim and --production exclude each other: simulation uses development keys")
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if c.sim && !explicit["listen"] {
		c.httpAddr = "127.0.0.1:5000"
	}
	c.oscillatorSet = explicit["oscillator"]
	if c.sim && !explicit["ntp"] {
		c.ntpAddr = "127.0.0.1:11123" // unprivileged: simulation runs as any user
	}
	for _, a := range strings.Split(allow, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.allow = append(c.allow, a)
		}
	}
	c.keyDir = getenv("NTP_SIGNING_KEY_PATH")
	c.seedFile = getenv("AUNSORM_NATIVE_RNG_SEED_PATH")
	c.refresh = 15 * time.Second
	if s := getenv("REFRESH_INTERVAL_SECS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 3600 {
			return nil, fmt.Errorf("REFRESH_INTERVAL_SECS=%q: want whole seconds from 1 to 3600", s)
		}
		c.refresh = time.Duration(n) * time.Second
	}
	// Simulation makes its own development material: credentials a unit
	// passes (even SetCredential= placeholders) must not replace it.
	if creds := getenv("CREDENTIALS_DIRECTORY"); creds != "" && !c.sim {
		c.credentialsDir = creds
		for _, d := range []struct {
			dst  *string
			name string
		}{{&c.tlsCert, "tls.crt"}, {&c.tlsKey, "tls.key"}, {&c.clientCA, "client-ca.pem"}} {
			if *d.dst == "" {
				*d.dst = filepath.Join(creds, d.name)
			}
		}
	}
	if c.stateDir == "" {
		c.stateDir = getenv("STATE_DIRECTORY")
	}
	if c.stateDir == "" {
		c.stateDir = "/var/lib/timenode"
	}
	switch c.ntsKeyFile {
	case "":
		c.ntsKeyFile = filepath.Join(c.stateDir, "nts-cookie-keys")
	case "-":
		c.ntsKeyFile = ""
	}
	if c.keyDir == "" {
		c.keyDir = filepath.Join(c.stateDir, "keys")
	} else if !c.sim {
		dir, err := signingKeyDir(c.keyDir)
		if err != nil {
			return nil, err
		}
		c.keyDir = dir
	}
	if c.roughtimeKey == "" {
		c.roughtimeKey = filepath.Join(c.keyDir, signer.RoughtimeKeyFile)
	}
	c.authorityID = getenv("NTP_AUTHORITY_ID")
	if c.authorityID == "" {
		c.authorityID = "timenode.local"
		if c.sim {
			c.authorityID = "ntp.sim.timenode"
		}
	}
	c.stratum = 1
	if s := getenv("NTP_STRATUM"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 15 {
			return nil, fmt.Errorf("NTP_STRATUM=%q: want a stratum from 1 to 15", s)
		}
		c.stratum = uint8(n)
	}
	// Above stratum 1 the NTP reference id names an upstream server by
	// address (RFC 5905); without one the server sends 127.127.1.1.
	if s := getenv("NTP_REFERENCE_ADDRESS"); s != "" {
		id, err := ntp.RefIDFromAddress(s)
		if err != nil {
			return nil, fmt.Errorf("NTP_REFERENCE_ADDRESS=%q: want the IPv4 or IPv6 address of the upstream reference: %w", s, err)
		}
		c.upstreamRefID = id
	}
	c.maxAge = 30 * time.Second
	c.notify = newNotifier(getenv)
	c.watchdog = watchdogInterval(getenv)
	if verbose {
		c.logLevel = slog.LevelDebug
	}
	return c, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	// --version stands alone, as in every daemon, whatever else is given.
	for _, a := range args {
		if a == "--version" || a == "-version" {
			fmt.Fprintln(stdout, version.Get().Line("timenoded"))
			return 0
		}
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "timenoded: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("timenoded stopped", "err", err)
		return 1
	}
	return 0
}

// signingKeyDir reads NTP_SIGNING_KEY_PATH. The runbook gives one key
// file (/run/keys/ntp-signing-key.pem); timenode signs with a pair, so it
// takes the directory of the pair, and a path to either key of the pair
// names that directory. Any other file is refused, saying what to give.
func signingKeyDir(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() {
		return p, nil // a missing directory is reported when the keys are loaded, with its path
	}
	dir, base := filepath.Dir(p), filepath.Base(p)
	if base == signer.Ed25519KeyFile || base == signer.MLDSA65KeyFile {
		return dir, nil
	}
	return "", fmt.Errorf("NTP_SIGNING_KEY_PATH=%s is a file: timenode signs every attestation with two keys, Ed25519 and ML-DSA-65, "+
		"so NTP_SIGNING_KEY_PATH names the directory that holds %s and %s (made by `timenodectl keys generate --dir DIR`), e.g. NTP_SIGNING_KEY_PATH=%s",
		p, signer.Ed25519KeyFile, signer.MLDSA65KeyFile, dir)
}
