package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/signer"
)

// Config configures a Client. Only URL is required outside production.
type Config struct {
	// URL is the attestation endpoint (AUNSORM_CLOCK_REFRESH_URL); https
	// only.
	URL string
	// KeysURL is the /keys document (default: "keys" next to URL).
	KeysURL string
	// Pins are trusted fingerprints (AUNSORM_CALIBRATION_FINGERPRINT):
	// SHA-256 of an attestation certificate, or, outside production, of a
	// certificate-less key (signer.KeyFingerprint). Empty outside
	// production: trust the keys the TLS-authenticated server publishes.
	Pins []string
	// Roots are the CAs attestation certificates must chain to; required
	// in production.
	Roots *x509.CertPool
	// TLSCAFile is a PEM bundle that authenticates the server's TLS
	// certificate (system roots if empty). It is re-read on reconnect.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile, if set, are the client certificate for
	// mTLS (the node's service CA); re-read on reconnect like TLSCAFile.
	TLSCertFile, TLSKeyFile string
	// Production rejects development keys and certificates and requires
	// Pins and Roots.
	Production bool
	// Ed25519Only skips ML-DSA-65 for clients that cannot yet.
	Ed25519Only bool
	// RequireTrusted refuses an attestation whose signed GNSS integrity
	// state is not "trusted" (suspect, untrusted, or none: a node
	// without integrity checks, or a format older than version 3); the
	// previous attestation stays current until it is too old. Off (the
	// default), a suspect node's attestation is accepted, its bound
	// already widened, and its state is logged and in Health.
	RequireTrusted bool
	// MaxAge (AUNSORM_CLOCK_MAX_AGE_SECS, 30 s) and Interval
	// (AUNSORM_CLOCK_REFRESH_INTERVAL_SECS, 15 s).
	MaxAge, Interval time.Duration
	Log              *slog.Logger
	// Now is the local clock the age is measured on (time.Now if nil).
	Now func() time.Time
	// KeysTTL is how long a fetched /keys document is used before it is
	// fetched again (4 × Interval if zero), so that a rotation's
	// endorsement is seen during the overlap.
	KeysTTL time.Duration
	// OnFollow is called with the fingerprint of a key trusted through an
	// endorsement, so that the caller may persist the new pin.
	OnFollow func(fingerprint string)
}

// ErrInsecureURL is returned for a refresh URL that is not https.
var ErrInsecureURL = errors.New("client: only https:// refresh URLs are accepted")

// Client refreshes and holds the last verified attestation.
type Client struct {
	cfg  Config
	log  *slog.Logger
	attU string
	keyU string

	retries atomic.Uint64 // see Retries

	mu        sync.Mutex
	http      *http.Client
	pins      map[string]bool
	trusted   map[string]signer.PublicKey
	last      *signer.Attestation
	lastErr   error
	rtt       time.Duration
	sigValid  bool
	refreshed time.Time
	keysAt    time.Time
}

// New checks cfg and returns a client; it does no I/O.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("client: refresh URL %q: %w", cfg.URL, err)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("%w: %q (scheme %q)", ErrInsecureURL, cfg.URL, u.Scheme)
	}
	if cfg.KeysURL == "" {
		k := *u
		k.Path, k.RawQuery = strings.TrimSuffix(u.Path, "attestation")+"keys", ""
		cfg.KeysURL = k.String()
	} else if !strings.HasPrefix(cfg.KeysURL, "https://") {
		return nil, fmt.Errorf("%w: keys URL %q", ErrInsecureURL, cfg.KeysURL)
	}
	if cfg.Production && (len(cfg.Pins) == 0 || cfg.Roots == nil) {
		return nil, errors.New("client: production mode needs a calibration fingerprint and the production CA")
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 30 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.KeysTTL <= 0 {
		cfg.KeysTTL = 4 * cfg.Interval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, log: cfg.Log.With("component", "clock_refresh"), attU: u.String(), keyU: cfg.KeysURL,
		pins: map[string]bool{}, trusted: map[string]signer.PublicKey{}}
	for _, p := range cfg.Pins {
		fp, err := signer.NormalizeFingerprint(p)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		c.pins[fp] = true
	}
	return c, nil
}

// reconnect builds a fresh HTTP client, re-reading the TLS CA file.
func (c *Client) reconnect() error {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.cfg.TLSCAFile != "" {
		b, err := os.ReadFile(c.cfg.TLSCAFile)
		if err != nil {
			return fmt.Errorf("client: TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("client: TLS CA %s: no PEM certificate", c.cfg.TLSCAFile)
		}
		conf.RootCAs = pool
	}
	if c.cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.cfg.TLSCertFile, c.cfg.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("client: TLS client certificate %s: %w", c.cfg.TLSCertFile, err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	timeout := min(c.cfg.Interval, 10*time.Second)
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}}
	c.mu.Lock()
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
	c.http = hc
	c.mu.Unlock()
	return nil
}

// connectionLost reports whether a request failed because its connection
// broke (reset, closed, or refused by an HTTP/2 GOAWAY) rather than on a
// timeout, a TLS verification or an answer: the one failure a retry on a
// new connection can cure. A load balancer or a NAT that drops a
// long-lived connection, or a server that closes an idle one just as a
// request goes out, causes it.
func connectionLost(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "server sent GOAWAY")
}

// Retries returns how many requests were repeated on a fresh connection
// after theirs broke (connectionLost); each one that then succeeded is a
// failure the caller never saw.
func (c *Client) Retries() uint64 { return c.retries.Load() }

func (c *Client) getJSON(ctx context.Context, u string, dst any) (time.Duration, error) {
	c.mu.Lock()
	hc := c.http
	c.mu.Unlock()
	if hc == nil {
		if err := c.reconnect(); err != nil {
			return 0, err
		}
		return c.getJSON(ctx, u, dst)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil && ctx.Err() == nil && connectionLost(err) {
		// A GET is safe to repeat, and the transport has already dropped
		// the dead connection, so the retry dials a fresh one. Once only:
		// a server that resets every connection is down, not flaky.
		c.retries.Add(1)
		c.log.Warn("connection lost; retrying once on a fresh connection", "url", u, "err", err)
		start = time.Now()
		resp, err = hc.Do(req.Clone(ctx))
	}
	if err != nil {
		return 0, fmt.Errorf("client: fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	rtt := time.Since(start)
	if err != nil {
		return rtt, fmt.Errorf("client: fetch %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return rtt, fmt.Errorf("client: fetch %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return rtt, fmt.Errorf("client: fetch %s: bad JSON: %w", u, err)
	}
	return rtt, nil
}

// Refresh fetches one attestation with a fresh nonce, verifies it and, if
// good, makes it the current one. It returns the verification error
// otherwise (the current attestation is kept until it is too old).
func (c *Client) Refresh(ctx context.Context) (*signer.Attestation, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.attU)
	q := u.Query()
	q.Set("nonce", hex.EncodeToString(nonce))
	u.RawQuery = q.Encode()
	var att signer.Attestation
	rtt, err := c.getJSON(ctx, u.String(), &att)
	if err != nil {
		return nil, c.fail(err, false)
	}
	c.mu.Lock()
	_, known := c.trusted[att.KeyID]
	expired := time.Since(c.keysAt) > c.cfg.KeysTTL
	c.mu.Unlock()
	if !known || expired {
		if err := c.refreshKeys(ctx); err != nil {
			return nil, c.fail(err, false)
		}
	}
	c.mu.Lock()
	v := signer.NewVerifier(nil)
	for id, k := range c.trusted {
		v.Keys[id] = k
	}
	c.mu.Unlock()
	v.Production, v.Ed25519Only, v.MaxAge = c.cfg.Production, c.cfg.Ed25519Only, c.cfg.MaxAge
	v.RequireTrusted = c.cfg.RequireTrusted
	if err := v.Verify(&att, c.cfg.Now(), nonce); err != nil {
		sigBad := errors.Is(err, signer.ErrSignature) || errors.Is(err, signer.ErrUnknownKey) || errors.Is(err, signer.ErrDevelopmentKey)
		return nil, c.fail(fmt.Errorf("client: verify attestation from %s: %w", c.attU, err), sigBad)
	}
	c.mu.Lock()
	c.last, c.lastErr, c.rtt, c.sigValid, c.refreshed = &att, nil, rtt, true, c.cfg.Now()
	c.mu.Unlock()
	c.log.Info("Clock attestation validated", "authority_id", att.AuthorityID, "key_id", att.KeyID,
		"sequence", att.Sequence, "stratum", att.Stratum, "clock_state", att.ClockState,
		"error_bound_ns", att.ErrorBoundNs, "integrity", IntegrityOf(&att),
		"age_ms", c.cfg.Now().Sub(att.Time()).Milliseconds(), "round_trip_ms", rtt.Milliseconds())
	return &att, nil
}

// IntegrityOf describes a verified attestation's signed GNSS integrity
// field in one line: "suspect (enforced): receiver/cn0_uniform", "off"
// (a node without integrity checks), or "not reported (format version 2)"
// for a document older than the field.
func IntegrityOf(a *signer.Attestation) string {
	if a.Version < signer.IntegrityVersion {
		return fmt.Sprintf("not reported (format version %d)", a.Version)
	}
	return a.Integrity.String()
}

func (c *Client) fail(err error, sigInvalid bool) error {
	c.mu.Lock()
	c.lastErr = err
	if sigInvalid {
		c.sigValid = false
	}
	c.mu.Unlock()
	return err
}
