package provision

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aunsorm/timenode/netsvc/certaudit"
	"github.com/aunsorm/timenode/netsvc/mtls"
	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
)

// siteFiles are the daemon's files of a generation, in report order.
var siteFiles = []string{site.TLSCert, site.ServerCA, site.ClientCA, site.AttestationCA,
	site.AttestationCert, site.NextAttestationCert, site.AllowList, site.MetricsCA, site.Env, site.LeapSeconds, site.WitnessCA}

// optionalFiles may be left out of a bundle.
var optionalFiles = map[string]bool{site.NextAttestationCert: true, site.MetricsCA: true, site.LeapSeconds: true, site.WitnessCA: true}

// roles say what each file is, for "missing" and "unknown" messages.
var roles = map[string]string{
	site.TLSCert:             "the node's TLS server certificate chain, leaf first, issued from `timenodectl provision csr tls`",
	site.ServerCA:            "the CA that issued tls.crt",
	site.ClientCA:            "the CA(s) of the mTLS clients",
	site.AttestationCA:       "the production CA of the signing keys",
	site.AttestationCert:     "the certificate of the signing key, issued from `timenodectl provision csr attestation`",
	site.NextAttestationCert: "the next signing key's certificate (rotation only)",
	site.AllowList:           "the client identities allowed on HTTPS, one per line",
	site.MetricsCA:           "the CA(s) of the Prometheus scrapers' client certificates (optional: /metrics is then served over mTLS)",
	site.Env:                 "NTP_AUTHORITY_ID=... and the site's settings",
	site.LeapSeconds:         "the IETF leap-seconds.list (optional: replaces the image's tzdata list)",
	site.WitnessCA:           "the CA(s) of the NTS witnesses' servers (optional: replaces the system roots for --witness-nts)",
	BundleAuthorizedKeys:     "the administrators' SSH public keys",
	BundleNftables:           "the site's network segments (nft statements)",
	BundleModules:            "the board's PPS kernel modules",
}

// rootFiles maps a bundle's files for root services to their names in
// RootDir, in install order.
var rootFiles = []struct{ Bundle, Root string }{
	{BundleAuthorizedKeys, site.AuthorizedKeys},
	{BundleNftables, site.Nftables},
	{BundleModules, site.Modules},
}

// maxFileSize bounds every file read from a bundle or medium: nothing in
// one is larger than a few certificates.
const maxFileSize = 1 << 20

// Check validates the bundle in dir against the node at c.Now without
// changing anything. The error is for a bundle that cannot be read at
// all; everything else is in the Report.
func Check(c Config, dir string) (*Report, error) {
	c = c.withDefaults()
	r := &Report{Dir: dir}
	files, err := readBundle(dir, r)
	if err != nil {
		return nil, err
	}
	keepPinned(c, files, r)
	keepLeap(c, files, r)
	checkSite(c, files, r)
	checkRoot(c, files, r)
	return r, nil
}

// readBundle reads the known files of a bundle. README* files are
// skipped; anything else unknown, and anything that is not a regular
// file, is a problem (a typo must not drop a file silently).
func readBundle(dir string, r *Report) (map[string][]byte, error) {
	known := map[string]bool{}
	for _, n := range siteFiles {
		known[n] = true
	}
	for _, f := range rootFiles {
		known[f.Bundle] = true
	}
	return readFiles(dir, known, func(e fs.DirEntry) bool { return strings.HasPrefix(e.Name(), "README") }, r)
}

// readFiles reads the files of dir named in known into memory; the
// checks and the install then use these bytes, never the directory
// again, so what is installed is what was checked.
func readFiles(dir string, known map[string]bool, skip func(fs.DirEntry) bool, r *Report) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		name := e.Name()
		if skip(e) {
			continue
		}
		if !known[name] {
			r.problem(name, "unknown file: a bundle holds only %s (and README*); remove it or correct its name", strings.Join(knownNames(known), ", "))
			continue
		}
		if !e.Type().IsRegular() {
			r.problem(name, "not a regular file (%s): copy the file itself into the bundle", e.Type())
			continue
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			r.problem(name, "%v", err)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
		f.Close()
		switch {
		case err != nil:
			r.problem(name, "%v", err)
		case len(b) > maxFileSize:
			r.problem(name, "larger than %d bytes: not a %s", maxFileSize, roles[name])
		default:
			files[name] = b
		}
	}
	return files, nil
}

func knownNames(known map[string]bool) []string {
	var names []string
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkSite checks the daemon's files: all of them as the daemon would
// load them, with the node's keys.
func checkSite(c Config, files map[string][]byte, r *Report) {
	for _, name := range siteFiles {
		if _, ok := files[name]; !ok && !optionalFiles[name] {
			r.problem(name, "missing: %s", roles[name])
		}
	}
	for _, name := range siteFiles {
		if hasPrivateKey(files[name]) {
			r.problem(name, "holds a private key: a bundle carries public material only (the node's keys never leave it); remove the key block")
		}
	}
	uid, _, err := owner(c.State)
	if err != nil {
		r.problem(c.State, "the node's state directory: %v", err)
		return
	}
	// The libraries read some files by path: a private copy of exactly
	// the checked bytes, its name cut from their messages.
	stage, err := os.MkdirTemp("", "timenode-provision-")
	if err != nil {
		r.problem(c.State, "staging the bundle: %v", err)
		return
	}
	defer os.RemoveAll(stage)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(stage, name), b, 0o600); err != nil {
			r.problem(name, "staging: %v", err)
			return
		}
	}
	clean := func(err error) string {
		return strings.ReplaceAll(err.Error(), stage+string(filepath.Separator), "")
	}
	checkTLS(c, files, uid, r)
	checkClientCA(c, site.ClientCA, "client", files, stage, clean, r)
	checkClientCA(c, site.MetricsCA, "scraper", files, stage, clean, r)
	checkAttestation(c, files, stage, uid, clean, r)
	checkLeap(c, files, r)
	checkWitnessCA(c, files, r)
	if b, ok := files[site.AllowList]; ok {
		if ids, err := site.ParseAllowList(site.AllowList, b); err != nil {
			r.problem(site.AllowList, "%v", err)
		} else {
			r.ok(site.AllowList, "%d client identit%s allowed: %s", len(ids), plural(len(ids), "y", "ies"), abbreviate(ids, 5))
		}
	}
	if b, ok := files[site.Env]; ok {
		if env, err := site.ParseEnv(site.Env, b); err != nil {
			r.problem(site.Env, "%v", err)
		} else {
			var set []string
			for k, v := range env {
				if k != "NTP_AUTHORITY_ID" {
					set = append(set, k+"="+v)
				}
			}
			sort.Strings(set)
			r.ok(site.Env, "authority %s%s", env["NTP_AUTHORITY_ID"], prefixed("; ", strings.Join(set, ", ")))
		}
	}
}

// checkCAFile checks a bundle's CA file (if present) and returns its
// certificates as a pool, or nil when it is missing or unusable: each CA
// is described, and a development CA is a problem, whose message ends
// with why.
func checkCAFile(c Config, files map[string][]byte, name, why string, r *Report) *x509.CertPool {
	b, ok := files[name]
	if !ok {
		return nil
	}
	cas, err := parseCAs(name, b)
	if err != nil {
		r.problem(name, "%v", err)
		return nil
	}
	roots := x509.NewCertPool()
	var names []string
	for _, ca := range cas {
		roots.AddCert(ca)
		names = append(names, describe(ca, c.Now))
		if signer.IsDevelopmentCert(ca) {
			r.problem(name, "%q is a development CA: %s", ca.Subject.CommonName, why)
		}
	}
	r.ok(name, "%d CA%s: %s", len(cas), plural(len(cas), "", "s"), strings.Join(names, "; "))
	return roots
}

// checkWitnessCA checks witness-ca.pem (if present): CA certificates,
// none of them a development CA, and an NTS witness in site.env that
// uses them. A file no witness uses is a warning, not a problem: a site
// may stage its CA one bundle ahead of the witnesses.
func checkWitnessCA(c Config, files map[string][]byte, r *Report) {
	if checkCAFile(c, files, site.WitnessCA, "a production node's witnesses are production servers", r) == nil {
		return
	}
	env, err := site.ParseEnv(site.Env, files[site.Env])
	if err == nil && !site.OptsSet(env["TIMENODED_OPTS"], "witness-nts") {
		r.warn(site.WitnessCA, "no NTS witness uses it: %s sets no --witness-nts in TIMENODED_OPTS", site.Env)
	}
}

// checkTLS checks tls.crt: it belongs to the node's TLS key, it is valid
// now, it chains to server-ca.pem for server use, it names the node, it
// is production material and within the certificate policy.
func checkTLS(c Config, files map[string][]byte, uid int, r *Report) {
	roots := checkCAFile(c, files, site.ServerCA, "the appliance serves production certificates only", r)
	certPEM, ok := files[site.TLSCert]
	if !ok {
		return
	}
	keyName := filepath.Join(site.KeysDir, site.TLSKey)
	keyPEM, err := keyfile.ReadSecret(filepath.Join(c.State, keyName), keyPolicy(uid))
	if err != nil {
		r.problem(keyName, "the node's TLS key (made at first boot by `timenodectl certs csr`): %v", err)
		return
	}
	defer clear(keyPEM)
	m, err := mtls.Parse(certPEM, keyPEM, mtls.Files{Cert: site.TLSCert, Key: keyName}, c.Now)
	if err != nil {
		fix := ""
		switch {
		case errors.Is(err, mtls.ErrKeyMismatch):
			fix = ": it was issued for another key; have it issued from this node's request (`timenodectl provision csr tls`)"
		case errors.Is(err, mtls.ErrExpired), errors.Is(err, mtls.ErrNotYetValid):
			fix = fmt.Sprintf(" (checked at %s): have a current one issued", c.Now.UTC().Format(time.RFC3339))
		}
		r.problem(site.TLSCert, "%v%s", err, fix)
		return
	}
	leaf := m.Leaf
	bad := len(r.Problems)
	if len(leaf.DNSNames)+len(leaf.IPAddresses) == 0 {
		r.problem(site.TLSCert, "%q has no DNS or IP subject alternative name: clients verify the node by them; have it reissued with the node's names", leaf.Subject.CommonName)
	}
	chain := []*x509.Certificate{leaf}
	inter := x509.NewCertPool()
	for _, der := range m.Cert.Certificate[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			r.problem(site.TLSCert, "chain: %v", err)
			return
		}
		inter.AddCert(ic)
		chain = append(chain, ic)
	}
	for _, cert := range chain {
		if signer.IsDevelopmentCert(cert) {
			r.problem(site.TLSCert, "%q is development material: the appliance serves production certificates only", cert.Subject.CommonName)
		}
	}
	if roots != nil {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: c.Now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			r.problem(site.TLSCert, "does not verify against %s for server authentication at %s: %v", site.ServerCA, c.Now.UTC().Format(time.RFC3339), err)
		}
	}
	for _, f := range certaudit.EvaluateNamed([]certaudit.NamedCert{{Name: site.TLSCert, Cert: leaf}}, c.Now, certaudit.DefaultPolicy()) {
		if f.Severity >= certaudit.Violation {
			r.problem(site.TLSCert, "certificate policy (%s, %s): %s", f.Rule, f.Severity, f.Reason)
		} else if f.Severity >= certaudit.Alert {
			r.warn(site.TLSCert, "certificate policy (%s): %s", f.Rule, f.Reason)
		}
	}
	if len(r.Problems) == bad {
		r.ok(site.TLSCert, "server certificate %s, names %s, issued by %q, matches %s", describe(leaf, c.Now),
			strings.Join(certaudit.SANs(leaf), " "), leaf.Issuer.CommonName, keyName)
	}
}

// checkClientCA checks a CA bundle of client certificates (the mTLS
// clients', or the Prometheus scrapers') as the daemon loads it.
func checkClientCA(c Config, name, who string, files map[string][]byte, stage string, clean func(error) string, r *Report) {
	if _, ok := files[name]; !ok {
		return
	}
	certPEM, keyPEM, err := probePair(c.Now)
	if err != nil {
		r.problem(name, "checking: %v", err)
		return
	}
	m, err := mtls.Parse(certPEM, keyPEM, mtls.Files{Cert: "probe", Key: "probe", ClientCA: filepath.Join(stage, name)}, c.Now)
	if err != nil {
		r.problem(name, "%s", clean(err))
		return
	}
	for _, w := range m.Warnings {
		r.warn(name, "%s", strings.ReplaceAll(w, filepath.Join(stage, name), name))
	}
	var names []string
	for _, ca := range m.CAs {
		names = append(names, describe(ca, c.Now))
		if signer.IsDevelopmentCert(ca) {
			r.problem(name, "%q is a development CA: its throwaway %ss must not reach a production node", ca.Subject.CommonName, who)
		}
	}
	r.ok(name, "%d %s CA%s: %s", len(m.CAs), who, plural(len(m.CAs), "", "s"), strings.Join(names, "; "))
}

// probePair makes a throwaway self-signed certificate and key valid at now.
func probePair(now time.Time) (certPEM, keyPEM []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "probe"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// checkAttestation loads the node's signing keys with the bundle's
// certificates as the daemon does in production: each certificate must
// chain to attestation-ca.pem, be production material and certify
// exactly the node's keys, and a key must be valid now.
func checkAttestation(c Config, files map[string][]byte, stage string, uid int, clean func(error) string, r *Report) {
	roots := checkCAFile(c, files, site.AttestationCA, "the appliance needs the production attestation CA", r)
	keys := filepath.Join(c.State, site.KeysDir)
	nextKey := exists(filepath.Join(keys, signer.NextPrefix+signer.Ed25519KeyFile)) || exists(filepath.Join(keys, signer.NextPrefix+signer.MLDSA65KeyFile))
	_, nextCert := files[site.NextAttestationCert]
	switch {
	case nextCert && !nextKey:
		r.problem(site.NextAttestationCert, "the node has no next signing key (%s/next-signing-*.pem): make it with `timenodectl keys generate --dir %s --next`, or leave this file out", site.KeysDir, keys)
		return
	case nextKey && !nextCert:
		r.problem(site.NextAttestationCert, "missing: the node has a next signing key (%s/next-signing-*.pem), which the daemon loads only with its certificate; have it issued from `timenodectl keys csr --dir %s --next --cn AUTHORITY`", site.KeysDir, keys)
		return
	}
	if _, ok := files[site.AttestationCert]; !ok || roots == nil {
		return
	}
	bad := len(r.Problems)
	ks, err := signer.LoadKeySet(signer.LoadConfig{Dir: keys, CertDir: stage, Production: true, Roots: roots, Now: c.Now, KeyOwner: uid})
	if err != nil {
		file := site.AttestationCert
		if strings.Contains(err.Error(), signer.NextPrefix) {
			file = site.NextAttestationCert
		}
		r.problem(file, "%s", clean(err))
		return
	}
	defer ks.Close()
	if ks.Active(c.Now) == nil {
		r.problem(site.AttestationCert, "no signing key is valid at %s (%s): have a current certificate issued", c.Now.UTC().Format(time.RFC3339), signer.ErrNoKeyValid(c.Now))
	}
	for _, name := range []string{site.AttestationCert, site.NextAttestationCert} {
		b, ok := files[name]
		if !ok {
			continue
		}
		n, err := nodeCert(name, b)
		if err != nil {
			r.problem(name, "%v", err)
			continue
		}
		if left := n.Cert.NotAfter.Sub(c.Now); left < certaudit.DefaultPolicy().RotateBefore && left > 0 {
			r.warn(name, "expires in %s: rotate the signing key (`timenodectl keys generate --next`)", days(left))
		}
		if len(r.Problems) == bad {
			r.ok(name, "certifies signing key %s, %s, issued by %q; clients pin sha256 %s",
				signer.KeyID(n.Ed25519, n.MLDSA65, n.Development), describe(n.Cert, c.Now), n.Cert.Issuer.CommonName, signer.Fingerprint(n.Cert.Raw))
		}
	}
}

// hasPrivateKey reports whether b holds a PEM private key block (the
// certificate parsers skip them, and the file would be installed).
func hasPrivateKey(b []byte) bool {
	for len(b) > 0 {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return false
		}
		if strings.Contains(blk.Type, "PRIVATE KEY") {
			return true
		}
	}
	return false
}

// nodeCert parses an attestation certificate chain.
func nodeCert(name string, b []byte) (*signer.NodeCert, error) {
	chain, err := signer.DecodeCerts(name, b)
	if err != nil {
		return nil, err
	}
	return signer.ParseNodeChain(chain)
}

// parseCAs reads a PEM bundle of CA certificates: every block a
// certificate, at least one, each a CA.
func parseCAs(name string, b []byte) ([]*x509.Certificate, error) {
	ders, err := signer.DecodeCerts(name, b)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "signer: "))
	}
	var cas []*x509.Certificate
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", i+1, err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("%q is not a CA certificate: this file holds the CA, not a leaf", c.Subject.CommonName)
		}
		cas = append(cas, c)
	}
	return cas, nil
}

func poolOf(cas []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cas {
		p.AddCert(c)
	}
	return p
}

// describe is a certificate's subject and window as the operator reads it.
func describe(c *x509.Certificate, now time.Time) string {
	s := fmt.Sprintf("%q valid until %s", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
	switch left := c.NotAfter.Sub(now); {
	case left < 0:
		return s + " (expired)"
	case now.Before(c.NotBefore):
		return s + fmt.Sprintf(" (not valid before %s)", c.NotBefore.UTC().Format(time.RFC3339))
	default:
		return s + " (" + days(left) + " left)"
	}
}

// days renders a duration in whole days, rounded down.
func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	return fmt.Sprintf("%d day%s", n, plural(n, "", "s"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// abbreviate lists at most n items.
func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(", ... (%d more)", len(items)-n)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
