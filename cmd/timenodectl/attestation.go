package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
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
	g := registerGroup("attestation", "fetch and verify signed time attestations", 8)
	g.addLeaf("verify", leaf{use: "URL|FILE", args: oneArg,
		summary: "fetch an attestation from a node (https URL) or read a saved one (FILE) and verify it",
		help: `Exit 0 when it verified, 1 when not. With --production (what a client of a
production node must use) only keys certified by --attestation-ca and
pinned by --pin, or endorsed by such a key, are trusted.

The signed GNSS integrity state (format version 3) is printed: trusted,
suspect (the error bound is widened), untrusted (the node holds over), or
off (the node runs no integrity checks). A suspect or untrusted
attestation verifies; --require-trusted refuses anything but a signed
"trusted".`,
		flags: attestationVerify})
}

func attestationVerify(fs *flag.FlagSet) runFunc {
	cacert := fs.String("cacert", "", "CA certificate (PEM) that signed the server's TLS certificate")
	certFile := fs.String("cert", "", "client certificate (PEM) for mTLS")
	keyFile := fs.String("key", "", "client private key (PEM) for mTLS")
	keysFrom := fs.String("keys", "", "public keys: URL or file of a /keys document (default: /keys next to the attestation URL)")
	maxAge := fs.Duration("max-age", 30*time.Second, "reject attestations older than this")
	production := fs.Bool("production", false, "reject development keys; trust only keys certified by --attestation-ca and pinned by --pin (both required)")
	attCA := fs.String("attestation-ca", "", "production CA certificate(s) (PEM) the attestation certificates must chain to")
	var pins multiFlag
	fs.Var(&pins, "pin", "trusted SHA-256 `fingerprint` of an attestation certificate (AUNSORM_CALIBRATION_FINGERPRINT); repeatable")
	edOnly := fs.Bool("ed25519-only", false, "accept without checking the ML-DSA-65 signature (old clients)")
	requireTrusted := fs.Bool("require-trusted", false, "refuse an attestation whose signed GNSS integrity state is not trusted (suspect, untrusted, or none reported)")
	timeout := fs.Duration("timeout", 10*time.Second, "network timeout")
	return func(args []string, stdout, stderr io.Writer) int {
		const prog = "timenodectl attestation verify"
		target := args[0]
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		if *production || *attCA != "" || len(pins) > 0 {
			// The keys a server publishes prove nothing by themselves: trust
			// comes from the production CA and the pinned fingerprint, checked
			// by the same client library the sidecar uses.
			c := anchoredConfig{cacert: *cacert, cert: *certFile, key: *keyFile, keys: *keysFrom,
				attCA: *attCA, pins: pins, production: *production, edOnly: *edOnly, maxAge: *maxAge, requireTrusted: *requireTrusted}
			att, err := verifyAnchored(ctx, target, c)
			if err != nil {
				fmt.Fprintf(stderr, "%s: FAILED: %v\n", prog, err)
				if h := pinHint(ctx, target, c, err); h != "" {
					fmt.Fprintf(stderr, "hint: %s\n", h)
				} else if h := hintFor(err); h != "" {
					fmt.Fprintf(stderr, "hint: %s\n", h)
				}
				return 1
			}
			printAttestation(stdout, att, *edOnly)
			return 0
		}
		client, err := httpsClient(*cacert, *certFile, *keyFile)
		if err != nil {
			return fail(stderr, prog, err)
		}
		v := &verification{client: client, maxAge: *maxAge, production: *production, edOnly: *edOnly, requireTrusted: *requireTrusted}
		if err := v.run(ctx, target, *keysFrom, stdout); err != nil {
			return fail(stderr, prog, fmt.Errorf("FAILED: %w", err))
		}
		return 0
	}
}

// pinHint explains a pin that matches no published key when the pin is
// the SHA-256 of a certificate's PEM file (what sha256sum gives) rather
// than of the DER certificate, or is not a SHA-256 at all. It never
// prints the published fingerprints: pinning what a server offers would
// trust whoever answers.
func pinHint(ctx context.Context, target string, c anchoredConfig, err error) string {
	if !errors.Is(err, signer.ErrUnknownKey) || len(c.pins) == 0 {
		return ""
	}
	pinned := func(sum [32]byte) string {
		for _, p := range c.pins {
			if n, _ := signer.NormalizeFingerprint(p); n == hex.EncodeToString(sum[:]) {
				return p
			}
		}
		return ""
	}
	generic := "--pin is the SHA-256 of the DER attestation certificate (`timenodectl ca fingerprint attestation-cert.pem`, or openssl x509 -noout -fingerprint -sha256), not of the PEM file (sha256sum)"
	if c.attCA != "" {
		if b, rerr := os.ReadFile(c.attCA); rerr == nil {
			if p := pinned(sha256.Sum256(b)); p != "" {
				return fmt.Sprintf("--pin %s is the SHA-256 of the --attestation-ca file; %s", p, generic)
			}
		}
	}
	cl, cerr := httpsClient(c.cacert, c.cert, c.key)
	if cerr != nil {
		return generic
	}
	keysURL := c.keys
	if keysURL == "" {
		u, perr := url.Parse(target)
		if perr != nil {
			return generic
		}
		u.Path, u.RawQuery = strings.TrimSuffix(u.Path, "attestation")+"keys", ""
		keysURL = u.String()
	}
	var doc signer.KeysDocument
	if (&verification{client: cl}).getJSON(ctx, keysURL, &doc) != nil {
		return generic
	}
	keys, kerr := doc.PublicKeys()
	if kerr != nil {
		return generic
	}
	for _, k := range keys {
		if len(k.Chain) == 0 {
			continue
		}
		if p := pinned(sha256.Sum256(signer.EncodeCerts(k.Chain[0]))); p != "" {
			return fmt.Sprintf("--pin %s is the SHA-256 of key %s's certificate as a PEM file; pin the certificate's fingerprint instead: `timenodectl ca fingerprint` on that file prints %s", p, k.ID, signer.Fingerprint(k.Chain[0]))
		}
	}
	return generic
}

type verification struct {
	client                             *http.Client
	maxAge                             time.Duration
	production, edOnly, requireTrusted bool
	now                                func() time.Time // time.Now if nil
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
	ver.RequireTrusted = v.requireTrusted
	now := time.Now
	if v.now != nil {
		now = v.now
	}
	at := now()
	if err := ver.Verify(&att, at, nonce); err != nil {
		return err
	}
	printAttestationAt(stdout, &att, v.edOnly, at)
	return nil
}

// printAttestation reports a verified attestation.
func printAttestation(stdout io.Writer, att *signer.Attestation, edOnly bool) {
	printAttestationAt(stdout, att, edOnly, time.Now())
}

// printAttestationAt reports a verified attestation, its age taken at now.
func printAttestationAt(stdout io.Writer, att *signer.Attestation, edOnly bool, now time.Time) {
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
		{"integrity", client.IntegrityOf(att)},
		{"leap", att.Leap},
		{"sequence", fmt.Sprint(att.Sequence)},
		{"key_id", att.KeyID},
		{"development", fmt.Sprint(att.Development)},
		{"nonce", att.Nonce},
		{"age", now.Sub(att.Time()).Round(time.Microsecond).String()},
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
	requireTrusted                 bool
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
		Production: c.production, Ed25519Only: c.edOnly, MaxAge: c.maxAge, RequireTrusted: c.requireTrusted}
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
