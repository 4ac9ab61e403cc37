package provision

import (
	"crypto/rand"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/netsvc/site/sitetest"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
)

// t0 is the injected time of every test: certificates are made relative
// to it, never to the host's clock.
var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// node is a first-booted node (keys, TLS key, CSRs) with its site's CAs
// and a RootDir.
type node struct {
	*sitetest.Node
	cfg Config
	// att holds the attestation certificate issued for each key prefix:
	// an operator keeps the certificate that clients pin, and bundles
	// that re-issue it are refused (keepPinned).
	att map[string][]byte
}

func newNode(t *testing.T) *node {
	t.Helper()
	n := &node{Node: sitetest.NewNode(t, t0), att: map[string][]byte{}}
	n.cfg = Config{State: n.State, Root: filepath.Join(t.TempDir(), "timenode-site"), Now: t0, Ruleset: ruleset(t), Nft: nftCommand(t),
		LeapSeconds: imageLeapList(t)}
	return n
}

// imageLeapList writes the image's leap-seconds.list as the appliance's
// tzdata has it at t0: expired five months before (as Debian's expired on
// 2026-06-28), never the host's own file.
func imageLeapList(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "leap-seconds.list")
	if err := os.WriteFile(p, sitetest.LeapList(t0.Add(-340*day), t0.Add(-158*day)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ruleset is the image's ruleset, as /etc/nftables.conf on the appliance.
func ruleset(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "..", "image", "nftables", "timenode.nft"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var nftOnce struct {
	sync.Once
	argv []string
}

// nftCommand runs nft in a fresh network namespace when unshare works
// (the host's ruleset is then never consulted), else nft itself: `nft -c`
// changes nothing either way. Nil when nft is missing: the tests that
// need it skip.
func nftCommand(t *testing.T) []string {
	nftOnce.Do(func() {
		p, err := exec.LookPath("nft")
		if err != nil {
			if p, err = exec.LookPath("/usr/sbin/nft"); err != nil {
				return
			}
		}
		nftOnce.argv = []string{p}
		if u, err := exec.LookPath("unshare"); err == nil && exec.Command(u, "-rn", p, "-c", "-f", "/dev/null").Run() == nil {
			nftOnce.argv = []string{u, "-rn", p}
		}
	})
	return nftOnce.argv
}

// needNft skips a test that runs nft when it is missing.
func needNft(t *testing.T) {
	t.Helper()
	if nftCommand(t) == nil {
		t.Skip(`nft not found: install the Debian package "nftables"`)
	}
}

// addNextKey makes the node's next signing key, as `timenodectl keys
// generate --next` does.
func (n *node) addNextKey(t *testing.T) {
	t.Helper()
	tmp := t.TempDir()
	if err := keyfile.Generate(tmp, rand.Reader, nil, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{signer.Ed25519KeyFile, signer.MLDSA65KeyFile} {
		if err := os.Rename(filepath.Join(tmp, f), filepath.Join(n.State, site.KeysDir, signer.NextPrefix+f)); err != nil {
			t.Fatal(err)
		}
	}
}

// files is a complete, valid bundle for the node at t0: a 60-day server
// certificate, the CAs, the attestation certificate (and the next key's
// when the node has one), an allow-list and site.env.
func (n *node) files(t *testing.T) map[string][]byte {
	t.Helper()
	leaf := n.ServerCA.Leaf(t, n.TLSKey(t).Public(), "tn1.test.example", []string{"tn1.test.example", "192.0.2.10"},
		x509.ExtKeyUsageServerAuth, t0.Add(-time.Minute), t0.Add(60*day))
	f := map[string][]byte{
		site.TLSCert:         signer.EncodeCerts(leaf, n.ServerCA.Cert.Raw),
		site.ServerCA:        n.ServerCA.PEM(),
		site.ClientCA:        n.ClientCA.PEM(),
		site.AttestationCA:   signer.EncodeCerts(n.Attest.Cert.Raw),
		site.AttestationCert: n.issued(t, ""),
		site.AllowList:       []byte("# who may ask\nkms.test.example\n"),
		site.Env:             []byte("NTP_AUTHORITY_ID=time.test.example\n"),
	}
	if exists(filepath.Join(n.State, site.KeysDir, signer.NextPrefix+signer.Ed25519KeyFile)) {
		f[site.NextAttestationCert] = n.issued(t, signer.NextPrefix)
	}
	return f
}

// issued returns the attestation certificate of the key with prefix,
// issued once per key: the same bytes in every bundle until the key
// changes.
func (n *node) issued(t *testing.T, prefix string) []byte {
	t.Helper()
	ed, err := os.ReadFile(filepath.Join(n.State, site.KeysDir, prefix+signer.Ed25519KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	k := prefix + string(ed)
	if _, ok := n.att[k]; !ok {
		n.att[k] = n.AttestationCert(t, prefix, t0)
	}
	return n.att[k]
}

// attestationCert issues a certificate for the node's key (prefix "" or
// signer.NextPrefix) by ca over [notBefore, notAfter].
func (n *node) attestationCert(t *testing.T, ca *signer.CA, prefix string, notBefore, notAfter time.Time) []byte {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{signer.Ed25519KeyFile, signer.MLDSA65KeyFile} {
		b, err := os.ReadFile(filepath.Join(n.State, site.KeysDir, prefix+f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ks, err := signer.LoadKeySet(signer.LoadConfig{Dir: dir, CertDir: t.TempDir(), Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	csr, err := signer.CreateCSR(ks.Active(t0), "time.test.example")
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.Issue(csr, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return signer.EncodeCerts(der, ca.Cert.Raw)
}

// writeBundle writes files into a new bundle directory.
func writeBundle(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// bundle writes a complete valid bundle for the node.
func (n *node) bundle(t *testing.T) string {
	t.Helper()
	return writeBundle(t, n.files(t))
}

// link returns the generation S/site points at ("" if none).
func (n *node) link(t *testing.T) string {
	t.Helper()
	g, err := current(n.State)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// gensDir lists S/.site, leftovers included.
func (n *node) gensDir(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(n.State, site.GensDir))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// assertClean fails if a change left a temporary link or generation.
func (n *node) assertClean(t *testing.T) {
	t.Helper()
	if exists(filepath.Join(n.State, tmpLink)) {
		t.Errorf("stray temporary link %s", tmpLink)
	}
	for _, g := range n.gensDir(t) {
		if strings.HasPrefix(g, ".") {
			t.Errorf("stray temporary generation %s", g)
		}
	}
}

// crash is what a step hook panics with to stop a change as a crash would.
type crash struct{ step string }

// crashAt returns a step hook that crashes at step.
func crashAt(step string) func(string) error {
	return func(s string) error {
		if s == step {
			panic(crash{s})
		}
		return nil
	}
}

// crashed runs fn and reports whether it crashed (panicked with crash).
func crashed(fn func()) (did bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crash); !ok {
				panic(r)
			}
			did = true
		}
	}()
	fn()
	return false
}

// recordSteps returns a hook that records the steps it sees.
func recordSteps(steps *[]string) func(string) error {
	return func(s string) error {
		*steps = append(*steps, s)
		return nil
	}
}

// problemsText joins a report's problems.
func problemsText(r *Report) string {
	var s []string
	for _, p := range r.Problems {
		s = append(s, p.String())
	}
	return strings.Join(s, "\n")
}
