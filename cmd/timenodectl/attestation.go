package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/client"
)

func init() {
	register("attestation", "fetch and verify signed time attestations", attestationCmd)
}

func attestationCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: timenodectl attestation verify URL|FILE [--cacert FILE] [--cert FILE --key FILE] [--keys URL|FILE] [--max-age 30s] [--production --attestation-ca FILE --pin SHA256] [--ed25519-only]")
		return 2
	}
	fs := flag.NewFlagSet("attestation verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cacert := fs.String("cacert", "", "CA certificate (PEM) that signed the server's TLS certificate")
	certFile := fs.String("cert", "", "client certificate (PEM) for mTLS")
	keyFile := fs.String("key", "", "client private key (PEM) for mTLS")
	keysFrom := fs.String("keys", "", "public keys: URL or file of a /keys document (default: /keys next to the attestation URL)")
	maxAge := fs.Duration("max-age", 30*time.Second, "reject attestations older than this")
	production := fs.Bool("production", false, "reject development keys; trust only keys certified by --attestation-ca and pinned by --pin (both required)")
	attCA := fs.String("attestation-ca", "", "production CA certificate(s) (PEM) the attestation certificates must chain to")
	var pins multiFlag
	fs.Var(&pins, "pin", "trusted SHA-256 fingerprint of an attestation certificate (AUNSORM_CALIBRATION_FINGERPRINT); repeatable")
	edOnly := fs.Bool("ed25519-only", false, "accept without checking the ML-DSA-65 signature (old clients)")
	timeout := fs.Duration("timeout", 10*time.Second, "network timeout")
	// Accept the target before or after the flags.
	target, rest := "", args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		target, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if target == "" && fs.NArg() == 1 {
		target = fs.Arg(0)
	}
	if target == "" {
		fmt.Fprintln(stderr, "timenodectl attestation verify: missing URL or FILE")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if *production || *attCA != "" || len(pins) > 0 {
		// The keys a server publishes prove nothing by themselves: trust
		// comes from the production CA and the pinned fingerprint, checked
		// by the same client library the sidecar uses.
		att, err := verifyAnchored(ctx, target, anchoredConfig{cacert: *cacert, cert: *certFile, key: *keyFile, keys: *keysFrom,
			attCA: *attCA, pins: pins, production: *production, edOnly: *edOnly, maxAge: *maxAge})
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl: attestation verification FAILED: %v\n", err)
			return 1
		}
		printAttestation(stdout, att, *edOnly)
		return 0
	}
	client, err := httpsClient(*cacert, *certFile, *keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "timenodectl: %v\n", err)
		return 1
	}
	v := &verification{client: client, maxAge: *maxAge, production: *production, edOnly: *edOnly}
	if err := v.run(ctx, target, *keysFrom, stdout); err != nil {
		fmt.Fprintf(stderr, "timenodectl: attestation verification FAILED: %v\n", err)
		return 1
	}
	return 0
}

type verification struct {
	client             *http.Client
	maxAge             time.Duration
	production, edOnly bool
}

func (v *verification) run(ctx context.Context, target, keysFrom string, stdout io.Writer) error {
	var nonce []byte
	var att signer.Attestation
	if isURL(target) {
		u, err := url.Parse(target)
		if err != nil {
			return fmt.Errorf("attestation URL %q: %w", target, err)
		}
		if u.Scheme != "https" {
			return fmt.Errorf("attestation URL %q: only https is accepted", target)
		}
		nonce = make([]byte, 16)
		if _, err := rand.Read(nonce); err != nil {
			return err
		}
		q := u.Query()
		q.Set("nonce", hex.EncodeToString(nonce))
		u.RawQuery = q.Encode()
		if err := v.getJSON(ctx, u.String(), &att); err != nil {
			return err
		}
		if keysFrom == "" {
			k := *u
			k.Path, k.RawQuery = strings.TrimSuffix(u.Path, "attestation")+"keys", ""
			keysFrom = k.String()
		}
	} else if err := readJSON(target, &att); err != nil {
		return err
	}
	if keysFrom == "" {
		return errors.New("verifying a file needs --keys URL|FILE")
	}
	var doc signer.KeysDocument
	if isURL(keysFrom) {
		if err := v.getJSON(ctx, keysFrom, &doc); err != nil {
			return err
		}
	} else if err := readJSON(keysFrom, &doc); err != nil {
		return err
	}
	keys, err := doc.PublicKeys()
	if err != nil {
		return err
	}
	ver := signer.NewVerifier(keys)
	ver.MaxAge, ver.Production, ver.Ed25519Only = v.maxAge, v.production, v.edOnly
	if err := ver.Verify(&att, time.Now(), nonce); err != nil {
		return err
	}
	printAttestation(stdout, &att, v.edOnly)
	return nil
}

// printAttestation reports a verified attestation.
func printAttestation(stdout io.Writer, att *signer.Attestation, edOnly bool) {
	sigs := "ed25519+ml-dsa-65"
	if edOnly {
		sigs = "ed25519"
	}
	fmt.Fprintf(stdout, "attestation verified (%s)\n", sigs)
	for _, kv := range [][2]string{
		{"authority_id", att.AuthorityID},
		{"timestamp", att.Timestamp},
		{"error_bound", att.ErrorBound().String()},
		{"stratum", fmt.Sprint(att.Stratum)},
		{"clock_state", att.ClockState},
		{"leap", att.Leap},
		{"sequence", fmt.Sprint(att.Sequence)},
		{"key_id", att.KeyID},
		{"development", fmt.Sprint(att.Development)},
		{"nonce", att.Nonce},
		{"age", time.Since(att.Time()).Round(time.Microsecond).String()},
	} {
		fmt.Fprintf(stdout, "  %-13s %s\n", kv[0], kv[1])
	}
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// anchoredConfig is a verification against a trust anchor.
type anchoredConfig struct {
	cacert, cert, key, keys, attCA string
	pins                           []string
	production, edOnly             bool
	maxAge                         time.Duration
}

// verifyAnchored fetches and verifies one attestation from a live node,
// trusting only keys whose certificates chain to the attestation CA and
// match a pin (or are endorsed by such a key).
func verifyAnchored(ctx context.Context, target string, c anchoredConfig) (*signer.Attestation, error) {
	if !isURL(target) {
		return nil, errors.New("--production, --attestation-ca and --pin verify a live node: give its https URL (a saved attestation carries no certificate chain to check)")
	}
	if c.production && (c.attCA == "" || len(c.pins) == 0) {
		return nil, errors.New("--production needs the trust anchor: --attestation-ca FILE (the production CA) and --pin SHA256 (the attestation certificate's fingerprint, `openssl x509 -noout -fingerprint -sha256`)")
	}
	cfg := client.Config{URL: target, KeysURL: c.keys, Pins: c.pins, TLSCAFile: c.cacert, TLSCertFile: c.cert, TLSKeyFile: c.key,
		Production: c.production, Ed25519Only: c.edOnly, MaxAge: c.maxAge}
	if c.attCA != "" {
		pem, err := os.ReadFile(c.attCA)
		if err != nil {
			return nil, fmt.Errorf("--attestation-ca: %w", err)
		}
		cfg.Roots = x509.NewCertPool()
		if !cfg.Roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--attestation-ca %s: no PEM certificate found", c.attCA)
		}
	}
	cl, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	return cl.Refresh(ctx)
}

func isURL(s string) bool { return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") }

func (v *verification) getJSON(ctx context.Context, u string, dst any) error {
	if !strings.HasPrefix(u, "https://") {
		return fmt.Errorf("%s: only https is accepted", u)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("fetch %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("fetch %s: bad JSON: %w", u, err)
	}
	return nil
}

func readJSON(path string, dst any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("%s: bad JSON: %w", path, err)
	}
	return nil
}

// httpsClient trusts cacert if given, else the system roots, and presents
// the client certificate if given; TLS 1.3 only.
func httpsClient(cacert, certFile, keyFile string) (*http.Client, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS13}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("--cert and --key go together")
	}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{c}
	}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate found", cacert)
		}
		conf.RootCAs = pool
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}, nil
}
