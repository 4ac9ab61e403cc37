package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// Policy says which client identities may connect.
type Policy struct {
	// Allowed lists the client identities accepted: a DNS SAN, a URI SAN
	// (e.g. spiffe://aunsorm/ns/security/sa/kms) or, as a last resort, the
	// subject CN. Empty with a client CA: any certificate from the CA.
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
	conf   *tls.Config
}

// Manager serves the current material to new handshakes.
type Manager struct {
	cur atomic.Pointer[state]
	// OnHandshake, if set, is told the outcome of each client verification
	// (for mtls_handshake_success_ratio).
	OnHandshake func(ok bool)

	attempts, completed atomic.Uint64
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
	st := &state{m: m, policy: p}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.Cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if m.ClientCAs != nil {
		conf.ClientCAs = m.ClientCAs
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		if p.RequireClientCert {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		var err error
		if m.ClientCAs != nil {
			err = st.verify(cs)
		}
		if err == nil {
			mgr.completed.Add(1)
		}
		if mgr.OnHandshake != nil {
			mgr.OnHandshake(err == nil)
		}
		return err
	}
	st.conf = conf
	mgr.cur.Store(st)
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
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			mgr.attempts.Add(1)
			return mgr.cur.Load().conf, nil
		},
	}
}

// ClientCertRequired reports whether the current material asks clients
// for certificates at all (a client CA bundle is configured).
func (mgr *Manager) ClientCertRequired() bool { return mgr.cur.Load().m.ClientCAs != nil }

// ErrNotAllowed is returned for a client certificate whose identity is not
// on the allow-list.
var ErrNotAllowed = errors.New("mtls: client identity not on the allow-list")

// verify applies the allow-list to a verified client chain; it runs on
// full and resumed handshakes alike.
func (st *state) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		if st.policy.RequireClientCert {
			return errors.New("mtls: client certificate required")
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
	if len(st.policy.Allowed) == 0 {
		return nil
	}
	for _, id := range Identities(leaf) {
		if slices.Contains(st.policy.Allowed, id) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrNotAllowed, strings.Join(Identities(leaf), ", "))
}

// Identities lists a certificate's names in allow-list order of
// preference: DNS SANs, URI SANs, then the subject CN.
func Identities(c *x509.Certificate) []string {
	ids := append([]string(nil), c.DNSNames...)
	for _, u := range c.URIs {
		ids = append(ids, u.String())
	}
	if c.Subject.CommonName != "" {
		ids = append(ids, c.Subject.CommonName)
	}
	return ids
}
