package provision

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/netsvc/site/sitetest"
	"github.com/aunsorm/timenode/signer"
	"golang.org/x/crypto/ssh"
)

// TestCheckAcceptsAGoodBundle: a complete bundle for this node passes,
// and the summary says what each file is.
func TestCheckAcceptsAGoodBundle(t *testing.T) {
	needNft(t)
	n := newNode(t)
	files := n.files(t)
	files[BundleAuthorizedKeys] = []byte("# admins\n" + sshKey(t, "admin@test") + "\n")
	files[BundleNftables] = []byte("flush set inet timenode mgmt_v4\nadd element inet timenode mgmt_v4 { 10.90.0.0/24,\n  10.91.0.0/24 }\n")
	files[BundleModules] = []byte("parport_pc io=0x378 irq=7\npps_parport\n")
	files["README.md"] = []byte("how this bundle was made\n")
	r, err := Check(n.cfg, writeBundle(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) > 0 {
		t.Fatalf("refused a good bundle:\n%s", problemsText(r))
	}
	var out []string
	for _, f := range r.Files {
		out = append(out, f.String())
	}
	got := strings.Join(out, "\n")
	for _, want := range []string{
		`tls.crt: server certificate "tn1.test.example" valid until 2027-02-01T12:00:00Z (60 days left), names DNS:tn1.test.example IP:192.0.2.10`,
		"matches keys/tls.key",
		`server-ca.pem: 1 CA: "test server CA"`,
		`client-ca.pem: 1 client CA: "test client CA"`,
		"attestation-cert.pem: certifies signing key ",
		"clients pin sha256 ",
		"allow.txt: 1 client identity allowed: kms.test.example",
		"site.env: authority time.test.example",
		"authorized_keys: 1 SSH key: ssh-ed25519 SHA256:",
		"site.nft: 2 statements, accepted by `nft -c`",
		"modules.conf: load parport_pc io=0x378 irq=7; pps_parport",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if len(r.Warnings) > 0 {
		t.Errorf("warnings for a good bundle: %v", r.Warnings)
	}
}

// TestCheckRefusals: each broken bundle is refused with a problem that
// names the file at fault and says what is wrong.
func TestCheckRefusals(t *testing.T) {
	tests := []struct {
		name  string
		nft   bool // needs nft
		setup func(t *testing.T, n *node, f map[string][]byte)
		file  string // the file the problem names
		want  string // and what it says
	}{
		{name: "certificate of another key", setup: func(t *testing.T, n *node, f map[string][]byte) {
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			f[site.TLSCert] = signer.EncodeCerts(n.ServerCA.Leaf(t, other.Public(), "tn1", []string{"tn1.test.example"}, x509.ExtKeyUsageServerAuth, t0.Add(-time.Hour), t0.Add(30*day)))
		}, file: site.TLSCert, want: "issued for another key"},
		{name: "expired certificate", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.TLSCert] = signer.EncodeCerts(n.ServerCA.Leaf(t, n.TLSKey(t).Public(), "tn1", []string{"tn1.test.example"}, x509.ExtKeyUsageServerAuth, t0.Add(-40*day), t0.Add(-time.Hour)))
		}, file: site.TLSCert, want: "expired"},
		{name: "certificate not yet valid", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.TLSCert] = signer.EncodeCerts(n.ServerCA.Leaf(t, n.TLSKey(t).Public(), "tn1", []string{"tn1.test.example"}, x509.ExtKeyUsageServerAuth, t0.Add(time.Hour), t0.Add(30*day)))
		}, file: site.TLSCert, want: "valid from"},
		{name: "certificate not chaining to server-ca.pem", setup: func(t *testing.T, n *node, f map[string][]byte) {
			other := sitetest.NewIssuer(t, "another CA", t0)
			f[site.TLSCert] = signer.EncodeCerts(other.Leaf(t, n.TLSKey(t).Public(), "tn1", []string{"tn1.test.example"}, x509.ExtKeyUsageServerAuth, t0.Add(-time.Hour), t0.Add(30*day)))
		}, file: site.TLSCert, want: "does not verify against server-ca.pem"},
		{name: "client certificate as server certificate", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.TLSCert] = signer.EncodeCerts(n.ServerCA.Leaf(t, n.TLSKey(t).Public(), "tn1", []string{"tn1.test.example"}, x509.ExtKeyUsageClientAuth, t0.Add(-time.Hour), t0.Add(30*day)))
		}, file: site.TLSCert, want: "for server authentication"},
		{name: "no SAN", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.TLSCert] = signer.EncodeCerts(n.ServerCA.Leaf(t, n.TLSKey(t).Public(), "tn1", nil, x509.ExtKeyUsageServerAuth, t0.Add(-time.Hour), t0.Add(30*day)))
		}, file: site.TLSCert, want: "no DNS or IP subject alternative name"},
		{name: "development TLS certificate", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.TLSCert] = signer.EncodeCerts(n.ServerCA.Leaf(t, n.TLSKey(t).Public(), "timenode DEVELOPMENT server", []string{"localhost"}, x509.ExtKeyUsageServerAuth, t0.Add(-time.Hour), t0.Add(30*day)))
		}, file: site.TLSCert, want: "development material"},
		{name: "leaf lifetime over policy", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.TLSCert] = signer.EncodeCerts(n.ServerCA.Leaf(t, n.TLSKey(t).Public(), "tn1", []string{"tn1.test.example"}, x509.ExtKeyUsageServerAuth, t0.Add(-time.Hour), t0.Add(200*day)))
		}, file: site.TLSCert, want: "certificate policy (leaf_lifetime"},
		{name: "inside the rotation window", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.TLSCert] = signer.EncodeCerts(n.ServerCA.Leaf(t, n.TLSKey(t).Public(), "tn1", []string{"tn1.test.example"}, x509.ExtKeyUsageServerAuth, t0.Add(-80*day), t0.Add(5*day)))
		}, file: site.TLSCert, want: "rotate_window"},
		{name: "private key in the certificate file", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.TLSCert] = append(f[site.TLSCert], readFile(t, filepath.Join(n.State, site.KeysDir, site.TLSKey))...)
		}, file: site.TLSCert, want: "holds a private key"},
		{name: "server CA bundle holds a leaf", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.ServerCA] = f[site.TLSCert]
		}, file: site.ServerCA, want: "is not a CA certificate"},
		{name: "client CA not PEM", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.ClientCA] = []byte("not a certificate\n")
		}, file: site.ClientCA, want: "no CA certificate found"},
		{name: "client CA expired", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.ClientCA] = sitetest.NewIssuer(t, "old client CA", t0.Add(-400*day)).PEM()
		}, file: site.ClientCA, want: "no CA is valid now"},
		{name: "metrics CA not PEM", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.MetricsCA] = []byte("not a certificate\n")
		}, file: site.MetricsCA, want: "no CA certificate found"},
		{name: "metrics CA holds a leaf", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.MetricsCA] = f[site.TLSCert]
		}, file: site.MetricsCA, want: "is not a CA certificate"},
		{name: "development attestation CA and certificate", setup: func(t *testing.T, n *node, f map[string][]byte) {
			dev, err := signer.NewCA("test attestation", true, t0, 365*day)
			if err != nil {
				t.Fatal(err)
			}
			f[site.AttestationCA] = signer.EncodeCerts(dev.Cert.Raw)
			f[site.AttestationCert] = n.attestationCert(t, dev, "", t0.Add(-time.Hour), t0.Add(30*day))
		}, file: site.AttestationCert, want: "development"},
		{name: "attestation certificate from another CA", setup: func(t *testing.T, n *node, f map[string][]byte) {
			other, err := signer.NewCA("other attestation CA", false, t0, 365*day)
			if err != nil {
				t.Fatal(err)
			}
			f[site.AttestationCert] = n.attestationCert(t, other, "", t0.Add(-time.Hour), t0.Add(30*day))
		}, file: site.AttestationCert, want: "certificate signed by unknown authority"},
		{name: "attestation certificate of another node", setup: func(t *testing.T, n *node, f map[string][]byte) {
			other := &node{Node: sitetest.NewNode(t, t0)}
			f[site.AttestationCert] = other.attestationCert(t, n.Attest, "", t0.Add(-time.Hour), t0.Add(30*day))
		}, file: site.AttestationCert, want: "does not certify the keys"},
		{name: "attestation certificate expired", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.AttestationCert] = n.attestationCert(t, n.Attest, "", t0.Add(-40*day), t0.Add(-10*day))
		}, file: site.AttestationCert, want: "expired"},
		{name: "next certificate without next key", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.NextAttestationCert] = f[site.AttestationCert]
		}, file: site.NextAttestationCert, want: "the node has no next signing key"},
		{name: "next key without next certificate", setup: func(t *testing.T, n *node, f map[string][]byte) {
			n.addNextKey(t)
		}, file: site.NextAttestationCert, want: "missing: the node has a next signing key"},
		{name: "next certificate of the current key", setup: func(t *testing.T, n *node, f map[string][]byte) {
			n.addNextKey(t)
			f[site.NextAttestationCert] = f[site.AttestationCert]
		}, file: site.NextAttestationCert, want: "does not certify"},
		{name: "allow-list with a space", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.AllowList] = []byte("two names\n")
		}, file: site.AllowList, want: "allow.txt:1:"},
		{name: "unknown env key", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[site.Env] = []byte("NTP_AUTHORITY_ID=time.test.example\nNTP_SIGNING_KEY_PATH=/tmp\n")
		}, file: site.Env, want: "site.env:2: NTP_SIGNING_KEY_PATH is not a site setting"},
		{name: "missing file", setup: func(t *testing.T, n *node, f map[string][]byte) {
			delete(f, site.ClientCA)
		}, file: site.ClientCA, want: "missing"},
		{name: "unknown file", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f["alow.txt"] = f[site.AllowList]
		}, file: "alow.txt", want: "unknown file"},
		{name: "bad ssh key", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[BundleAuthorizedKeys] = []byte(sshKey(t, "ok") + "\nssh-ed25519 AAAAnotbase64 broken\n")
		}, file: BundleAuthorizedKeys, want: "authorized_keys:2: not an OpenSSH public key"},
		{name: "nft syntax error", nft: true, setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[BundleNftables] = []byte("flush set inet timenode mgmt_v4\nadd element inet timenode mgmt_v4 { 10.90.0.0/33 }\n")
		}, file: BundleNftables, want: "nft -c refused it"},
		{name: "nft unknown set", nft: true, setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[BundleNftables] = []byte("add element inet timenode nope_v4 { 10.0.0.1 }\n")
		}, file: BundleNftables, want: "site.nft:1:"},
		{name: "nft statement touching the ruleset", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[BundleNftables] = []byte("flush ruleset\n")
		}, file: BundleNftables, want: "site.nft:1:"},
		{name: "module not for PPS", setup: func(t *testing.T, n *node, f map[string][]byte) {
			f[BundleModules] = []byte("pps_ldisc\nusb_storage\n")
		}, file: BundleModules, want: "modules.conf:2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.nft {
				needNft(t)
			}
			n := newNode(t)
			f := n.files(t)
			tt.setup(t, n, f)
			r, err := Check(n.cfg, writeBundle(t, f))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range r.Problems {
				if p.File == tt.file && strings.HasPrefix(p.String(), tt.file) && strings.Contains(p.String(), tt.want) {
					return
				}
			}
			t.Errorf("no problem naming %s with %q; problems:\n%s", tt.file, tt.want, problemsText(r))
		})
	}
}

// TestCheckNotARegularFile: a symlink in a bundle is refused by name
// (the bundle is copied by value, never followed).
func TestCheckNotARegularFile(t *testing.T) {
	n := newNode(t)
	f := n.files(t)
	delete(f, site.AllowList)
	dir := writeBundle(t, f)
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, site.AllowList)); err != nil {
		t.Fatal(err)
	}
	r, err := Check(n.cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(problemsText(r), "allow.txt: not a regular file") {
		t.Errorf("problems:\n%s", problemsText(r))
	}
}

// TestCheckAtAnotherTime: --now moves the verdict, not the host clock.
func TestCheckAtAnotherTime(t *testing.T) {
	n := newNode(t)
	dir := n.bundle(t)
	later := n.cfg
	later.Now = t0.Add(50 * day) // the TLS certificate has 10 days left, the attestation one expired
	r, err := Check(later, dir)
	if err != nil {
		t.Fatal(err)
	}
	text := problemsText(r)
	for _, want := range []string{"tls.crt: certificate policy (rotate_window", "attestation-cert.pem:"} {
		if !strings.Contains(text, want) {
			t.Errorf("at t0+50d: problems lack %q:\n%s", want, text)
		}
	}
}

// TestCheckWarnsNearExpiry: inside the alert window is a warning, not a
// refusal.
func TestCheckWarnsNearExpiry(t *testing.T) {
	n := newNode(t)
	f := n.files(t)
	f[site.TLSCert] = signer.EncodeCerts(n.ServerCA.Leaf(t, n.TLSKey(t).Public(), "tn1", []string{"tn1.test.example"}, x509.ExtKeyUsageServerAuth, t0.Add(-70*day), t0.Add(18*day)))
	r, err := Check(n.cfg, writeBundle(t, f))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) > 0 {
		t.Fatalf("refused:\n%s", problemsText(r))
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0].String(), "tls.crt: certificate policy (alert_window)") {
		t.Errorf("warnings %v", r.Warnings)
	}
}

// sshKey makes an Ed25519 public key line.
func sshKey(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519Key()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment
}

// TestCheckWitnessCA: witness-ca.pem must hold production CA
// certificates; one that no NTS witness in site.env uses is a warning.
func TestCheckWitnessCA(t *testing.T) {
	const withWitness = "NTP_AUTHORITY_ID=time.test.example\nTIMENODED_OPTS=\"--witness-nts nts.test.example:4460\"\n"
	witnessCA := sitetest.NewIssuer(t, "witness CA", t0.Add(-day)).PEM()
	dev, err := signer.NewCA("test witness", true, t0, 365*day)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      string
		ca       func(f map[string][]byte) []byte
		ok, warn string
		problem  string
	}{
		{name: "used by a witness", env: withWitness, ca: func(map[string][]byte) []byte { return witnessCA },
			ok: `witness-ca.pem: 1 CA: "witness CA"`},
		{name: "no witness uses it", ca: func(map[string][]byte) []byte { return witnessCA },
			ok: `witness-ca.pem: 1 CA: "witness CA"`, warn: "witness-ca.pem: no NTS witness uses it: site.env sets no --witness-nts"},
		{name: "not PEM", env: withWitness, ca: func(map[string][]byte) []byte { return []byte("not a certificate\n") },
			problem: "witness-ca.pem: no PEM"},
		{name: "a leaf", env: withWitness, ca: func(f map[string][]byte) []byte { return f[site.TLSCert] },
			problem: "witness-ca.pem: \"tn1.test.example\" is not a CA certificate"},
		{name: "development CA", env: withWitness, ca: func(map[string][]byte) []byte { return signer.EncodeCerts(dev.Cert.Raw) },
			problem: "witness-ca.pem: \"test witness DEVELOPMENT\" is a development CA: a production node's witnesses are production servers"},
	}
	n := newNode(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := n.files(t)
			if tt.env != "" {
				f[site.Env] = []byte(tt.env)
			}
			f[site.WitnessCA] = tt.ca(f)
			r, err := Check(n.cfg, writeBundle(t, f))
			if err != nil {
				t.Fatal(err)
			}
			text := problemsText(r)
			switch {
			case tt.problem == "" && len(r.Problems) > 0:
				t.Fatalf("refused:\n%s", text)
			case tt.problem != "" && (len(r.Problems) != 1 || !strings.HasPrefix(r.Problems[0].String(), tt.problem)):
				t.Fatalf("problems:\n%s\nwant one starting %q", text, tt.problem)
			}
			var files []string
			for _, f := range r.Files {
				files = append(files, f.String())
			}
			if !strings.Contains(strings.Join(files, "\n"), tt.ok) {
				t.Errorf("summary lacks %q:\n%s", tt.ok, strings.Join(files, "\n"))
			}
			var warns []string
			for _, w := range r.Warnings {
				warns = append(warns, w.String())
			}
			if got := strings.Join(warns, "\n"); (tt.warn == "") != (got == "") || !strings.Contains(got, tt.warn) {
				t.Errorf("warnings %q, want %q", got, tt.warn)
			}
		})
	}
}
