// Package signertest makes signing keys certified by a test CA and serves
// them as a node does (/attestation and /keys over TLS), for the tests of
// the client library and of timenodectl.
package signertest

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer"
)

// Authority is the authority id the test node signs as.
const Authority = "ntp.test.aunsorm"

// CertifiedKey makes a key pair certified by ca for [nb, na]. copy makes
// an independent copy of it (a key set owns and wipes its keys).
func CertifiedKey(t testing.TB, ca *signer.CA, nb, na time.Time) (kp *signer.KeyPair, copy func() *signer.KeyPair) {
	t.Helper()
	seeds := make([]byte, 64)
	rand.Read(seeds)
	tmp, err := signer.NewKeyPair(seeds[:32], seeds[32:], signer.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr, err := signer.CreateCSR(tmp, Authority)
	tmp.Close()
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.Issue(csr, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	n, err := signer.ParseNodeChain([][]byte{der, ca.Cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	opts := signer.KeyOptions{Development: n.Development, NotBefore: n.Cert.NotBefore, NotAfter: n.Cert.NotAfter, Chain: n.Chain}
	copy = func() *signer.KeyPair {
		c, err := signer.NewKeyPair(seeds[:32], seeds[32:], opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return copy(), copy
}

// Node serves /attestation and /keys from a swappable signer over TLS,
// as timenoded does.
type Node struct {
	Signer atomic.Pointer[signer.Signer]
	TS     *httptest.Server
	// Down makes /attestation answer 503.
	Down atomic.Bool
	// Resets is how many of the next /attestation requests have their
	// connection reset (a TCP RST, as from a dropped NAT entry or a
	// crashed proxy) instead of an answer.
	Resets atomic.Int32
	// Integrity is the signed integrity field (nil: no checks).
	Integrity atomic.Pointer[signer.Integrity]
}

// NewNode serves set until the test ends.
func NewNode(t testing.TB, set *signer.KeySet) *Node {
	n := &Node{}
	n.Signer.Store(signer.NewSignerSet(set, time.Now))
	mux := http.NewServeMux()
	mux.HandleFunc("/attestation", func(w http.ResponseWriter, r *http.Request) {
		if n.Down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r := n.Resets.Load(); r > 0 && n.Resets.CompareAndSwap(r, r-1) {
			resetConn(t, w)
			return
		}
		nonce, _ := hex.DecodeString(r.URL.Query().Get("nonce"))
		atts, err := n.Signer.Load().Attest(signer.Claims{AuthorityID: Authority, Stratum: 1,
			TimestampUnixNs: time.Now().UnixNano(), ErrorBoundNs: 1000, ClockState: "LOCKED", Leap: "none",
			Integrity: n.Integrity.Load()}, [][]byte{nonce})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(atts[0])
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(signer.NewKeysDocument(Authority, n.Signer.Load().Keys()))
	})
	n.TS = httptest.NewTLSServer(mux)
	t.Cleanup(n.TS.Close)
	return n
}

// resetConn closes the request's connection with a TCP RST.
func resetConn(t testing.TB, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("signertest: hijack for a reset: %v", err)
		return
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close sends RST, not FIN
	}
	conn.Close()
}

// TLSCAFile writes the node's TLS certificate as a CA file.
func (n *Node) TLSCAFile(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "tls-ca.pem")
	if err := os.WriteFile(p, signer.EncodeCerts(n.TS.Certificate().Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
