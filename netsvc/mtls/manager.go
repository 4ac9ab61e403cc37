package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Policy says which client identities may connect.
type Policy struct {
	// Allowed lists the client identities accepted: a DNS name, a URI
	// (e.g. spiffe://aunsorm/ns/security/sa/kms) or an IP address, each
	// matched only against SANs of its own type; the subject CN counts
	// only in a certificate without SANs (RFC 9525; see allow.go). Empty
	// with a client CA: any certificate from the CA.
	Allowed []string
	// RequireClientCert refuses handshakes without a client certificate.
	// When false, a client without one may only reach the paths the HTTP
	// layer allows anonymously (the gateway's /health check).
	RequireClientCert bool
}

// state is what one handshake sees: material and policy together, so a
// reload can never pair a new certificate with an old allow-list.
type state struct {
	m      *Material
	policy Policy
	allow  []allowEntry // policy.Allowed, parsed
	conf   *tls.Config
}

// Reasons a client handshake is refused: the label values of
// mtls_handshake_failures_total and the reason of the log line.
const (
	ReasonNoCertificate = "no_certificate" // the policy requires one
	ReasonUnknownCA     = "unknown_ca"     // not issued by a CA of the bundle
	ReasonExpired       = "expired"        // expired or not valid yet
	ReasonNotAllowed    = "not_allowed"    // identity not on the allow-list
	ReasonOther         = "other"          // any other verification failure
)

// Reasons lists every failure reason, in label order.
var Reasons = [...]string{ReasonNoCertificate, ReasonUnknownCA, ReasonExpired, ReasonNotAllowed, ReasonOther}

// LogEvery is the least time between two log lines of the same failure
// reason; the lines in between are counted and the count reported.
const LogEvery = 10 * time.Second

// Manager serves the current material to new handshakes.
type Manager struct {
	cur atomic.Pointer[state]
	// OnHandshake, if set, is told the outcome of each client verification
	// (for mtls_handshake_success_ratio).
	OnHandshake func(ok bool)
	// Log, if set, gets a WARN line for refused client handshakes, at most
	// one per reason every LogEvery.
	Log *slog.Logger
	// Now is the clock of that rate limit (time.Now if nil).
	Now func() time.Time

	attempts, completed atomic.Uint64
	failures            [len(Reasons)]atomic.Uint64

	logMu      sync.Mutex
	lastLog    [len(Reasons)]time.Time
	suppressed [len(Reasons)]uint64
}

// Failures returns the refused client handshakes so far, by reason.
func (mgr *Manager) Failures() map[string]uint64 {
	out := make(map[string]uint64, len(Reasons))
	for i, r := range Reasons {
		out[r] = mgr.failures[i].Load()
	}
	return out
}

// Classify names the reason of a client verification error.
func Classify(err error) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.Is(err, ErrNoClientCert):
		return ReasonNoCertificate
	case errors.Is(err, ErrNotAllowed):
		return ReasonNotAllowed
	case errors.As(err, &unknown):
		return ReasonUnknownCA
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return ReasonExpired
	default:
		return ReasonOther
	}
}

// refused counts a refused handshake and logs it unless its reason was
// logged less than LogEvery ago.
func (mgr *Manager) refused(err error, remote net.Addr) {
	reason := Classify(err)
	i := slices.Index(Reasons[:], reason)
	mgr.failures[i].Add(1)
	if mgr.Log == nil {
		return
	}
	now := time.Now()
	if mgr.Now != nil {
		now = mgr.Now()
	}
	mgr.logMu.Lock()
	if !mgr.lastLog[i].IsZero() && now.Sub(mgr.lastLog[i]) < LogEvery {
		mgr.suppressed[i]++
		mgr.logMu.Unlock()
		return
	}
	mgr.lastLog[i] = now
	suppressed := mgr.suppressed[i]
	mgr.suppressed[i] = 0
	mgr.logMu.Unlock()
	mgr.Log.Warn("client handshake refused", "reason", reason, "remote", remote.String(), "err", err,
		"suppressed_since_last", suppressed)
}

// HandshakeStats counts handshakes begun (a ClientHello arrived) and those
// whose verification completed successfully; the difference is refused
// certificates, policy refusals and clients that gave up.
func (mgr *Manager) HandshakeStats() (attempts, completed uint64) {
	return mgr.attempts.Load(), mgr.completed.Load()
}

// NewManager starts with m and p.
func NewManager(m *Material, p Policy) *Manager {
	mgr := &Manager{}
	mgr.Swap(m, p)
	return mgr
}

// Swap installs new material and policy for all later handshakes;
// connections already established keep theirs.
func (mgr *Manager) Swap(m *Material, p Policy) {
	st := &state{m: m, policy: p, allow: parseAllowList(p.Allowed)}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.Cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if m.ClientCAs != nil {
		// The chain is verified in VerifyConnection, not by crypto/tls:
		// its refusals end the handshake before any callback, so they
		// could be neither counted nor logged with their reason. The CA
		// names are still sent to the client.
		conf.ClientCAs = m.ClientCAs
		conf.ClientAuth = tls.RequestClientCert
	}
	st.conf = conf
	mgr.cur.Store(st)
}

// verifyConnection runs on every full and resumed handshake.
func (mgr *Manager) verifyConnection(st *state, cs tls.ConnectionState, remote net.Addr) error {
	var err error
	if st.m.ClientCAs != nil {
		err = st.verify(cs)
	}
	if err == nil {
		mgr.completed.Add(1)
	} else {
		mgr.refused(err, remote)
	}
	if mgr.OnHandshake != nil {
		mgr.OnHandshake(err == nil)
	}
	return err
}

// Material returns the material new handshakes use.
func (mgr *Manager) Material() *Material { return mgr.cur.Load().m }

// Policy returns the policy new handshakes use.
func (mgr *Manager) Policy() Policy { return mgr.cur.Load().policy }

// ServerConfig is the listener's config: it only hands each handshake the
// current immutable config, never mutating one in use.
func (mgr *Manager) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			mgr.attempts.Add(1)
			st := mgr.cur.Load()
			// One clone per handshake (small beside its key exchange) so
			// that a refusal names the client's address.
			conf := st.conf.Clone()
			remote := hello.Conn.RemoteAddr()
			conf.VerifyConnection = func(cs tls.ConnectionState) error { return mgr.verifyConnection(st, cs, remote) }
			return conf, nil
		},
	}
}

// ClientCertRequired reports whether the current material asks clients
// for certificates at all (a client CA bundle is configured).
func (mgr *Manager) ClientCertRequired() bool { return mgr.cur.Load().m.ClientCAs != nil }

// ErrNotAllowed is returned for a client certificate whose identity is not
// on the allow-list.
var ErrNotAllowed = errors.New("mtls: client identity not on the allow-list")

// ErrNoClientCert is returned when the policy requires a client
// certificate and the client sent none.
var ErrNoClientCert = errors.New("mtls: client certificate required")

// verify applies the allow-list to a verified client chain; it runs on
// full and resumed handshakes alike.
func (st *state) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		if st.policy.RequireClientCert {
			return ErrNoClientCert
		}
		return nil
	}
	leaf := cs.PeerCertificates[0]
	// On resumption the chain is not re-verified by crypto/tls against the
	// current pool: check it here so a CA removed by a reload is enforced.
	opts := x509.VerifyOptions{Roots: st.m.ClientCAs, Intermediates: x509.NewCertPool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("mtls: client certificate %q: %w", leaf.Subject.CommonName, err)
	}
	if len(st.allow) == 0 || allowedBy(leaf, st.allow) {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNotAllowed, strings.Join(Identities(leaf), ", "))
}
