package provision

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/netsvc/site"
)

func statusText(st *Status) string {
	var lines []string
	for _, f := range st.Node {
		lines = append(lines, f.String())
	}
	if st.Site != nil {
		for _, f := range st.Site.Files {
			lines = append(lines, f.String())
		}
		for _, f := range st.Site.Problems {
			lines = append(lines, "PROBLEM "+f.String())
		}
	}
	for _, f := range st.Root {
		lines = append(lines, f.String())
	}
	return strings.Join(lines, "\n")
}

// TestStatus: an unprovisioned node says so; a provisioned one names its
// generation, keys, certificates and settings.
func TestStatus(t *testing.T) {
	n := newNode(t)
	st, err := NodeStatus(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := statusText(st)
	if st.Provisioned || !strings.Contains(text, "site: not provisioned") || !strings.Contains(text, "current signing key ") ||
		!strings.Contains(text, "keys/next-signing-*.pem: none") {
		t.Errorf("unprovisioned status:\n%s", text)
	}
	if _, err := Install(n.cfg, n.bundle(t)); err != nil {
		t.Fatal(err)
	}
	n.addNextKey(t)
	if _, err := Install(n.cfg, n.bundle(t)); err != nil {
		t.Fatal(err)
	}
	later := n.cfg
	later.Now = t0.Add(2 * day)
	st, err = NodeStatus(later)
	if err != nil {
		t.Fatal(err)
	}
	text = statusText(st)
	if !st.Provisioned || st.Generation != n.link(t) || st.Previous == "" || !st.Installed.Equal(t0) {
		t.Errorf("status %+v", st)
	}
	for _, want := range []string{
		"site: generation " + st.Generation + ", made 2026-12-03T12:00:00Z (2 days ago); previous (for rollback): " + st.Previous,
		"keys/next-signing-*.pem: next signing key ",
		"keys/tls.key: TLS server key present",
		"tls/node.csr: none",
		`tls.crt: server certificate "tn1.test.example" valid until 2027-02-01T12:00:00Z (58 days left)`,
		"attestation-cert.pem: certifies signing key ",
		"next-attestation-cert.pem: certifies signing key ",
		"allow.txt: 1 client identity",
		"site.env: authority time.test.example",
		filepath.Join(n.cfg.Root, site.AuthorizedKeys) + ": none",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "PROBLEM") {
		t.Errorf("problems in a good node's status:\n%s", text)
	}
	t.Logf("status:\n%s", text)
}

// TestStatusBeforeFirstBoot: no state directory yet is a status too.
func TestStatusBeforeFirstBoot(t *testing.T) {
	c := Config{State: filepath.Join(t.TempDir(), "none"), Root: t.TempDir(), Now: t0}
	st, err := NodeStatus(c)
	if err != nil || st.Provisioned || !strings.Contains(statusText(st), "has not been through its first boot") {
		t.Errorf("%v:\n%s", err, statusText(st))
	}
}

// TestCSR: the node's requests are printed as they are; a missing one
// says how it is made; garbage is not passed on.
func TestCSR(t *testing.T) {
	n := newNode(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "tn1"}, DNSNames: []string{"tn1.test.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	tlsDir := filepath.Join(n.State, site.TLSDir)
	os.MkdirAll(tlsDir, 0o700)
	if err := os.WriteFile(filepath.Join(tlsDir, "node.csr"), csr, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tlsDir, "attestation.csr"), []byte("junk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind    string
		want    []byte
		wantErr string
	}{
		{kind: "tls", want: csr},
		{kind: "attestation", wantErr: "attestation.csr: no CERTIFICATE REQUEST"},
		{kind: "next-attestation", wantErr: "next-attestation.csr: none: make the next key"},
		{kind: "ssh", wantErr: `unknown request "ssh"`},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			b, err := CSR(n.cfg, tt.kind)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(b, tt.want) {
				t.Errorf("%q, %v", b, err)
			}
		})
	}
}

// TestBootstrap: a medium's files go to RootDir; a bad one refuses them
// all; what an operating system leaves on a stick is skipped.
func TestBootstrap(t *testing.T) {
	needNft(t)
	key := []byte(sshKey(t, "admin@test") + "\n")
	nft := []byte("flush set inet timenode mgmt_v4\nadd element inet timenode mgmt_v4 { 10.90.0.0/24 }\n")
	tests := []struct {
		name    string
		files   map[string][]byte
		wantErr string // "" for success
	}{
		{name: "keys only", files: map[string][]byte{BundleAuthorizedKeys: key}},
		{name: "everything, with artefacts", files: map[string][]byte{BundleAuthorizedKeys: key, BundleNftables: nft,
			BundleModules: []byte("pps_ldisc\n"), "._authorized_keys": []byte("\x00\x05"), "README.txt": []byte("hi\n"), "System Volume Information/": nil}},
		{name: "no keys", files: map[string][]byte{BundleNftables: nft}, wantErr: "authorized_keys: missing"},
		{name: "bad key refuses all", files: map[string][]byte{BundleAuthorizedKeys: []byte("ssh-rsa AAAA\n"), BundleNftables: nft}, wantErr: "authorized_keys:1:"},
		{name: "bad nft refuses all", files: map[string][]byte{BundleAuthorizedKeys: key, BundleNftables: []byte("flush ruleset\n")}, wantErr: "site.nft:1:"},
		{name: "misspelt file", files: map[string][]byte{BundleAuthorizedKeys: key, "modules.cnf": []byte("pps_ldisc\n")}, wantErr: "modules.cnf: unknown file"},
		{name: "site material is not for the medium", files: map[string][]byte{BundleAuthorizedKeys: key, site.AllowList: []byte("x\n")}, wantErr: "allow.txt: unknown file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t)
			medium := t.TempDir()
			for name, b := range tt.files {
				if strings.HasSuffix(name, "/") {
					os.Mkdir(filepath.Join(medium, name), 0o755)
					continue
				}
				if err := os.WriteFile(filepath.Join(medium, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Bootstrap(n.cfg, medium)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if entries, _ := os.ReadDir(n.cfg.Root); len(entries) > 0 {
					t.Errorf("a refused medium wrote %v", entries)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range rootFiles {
				b, ok := tt.files[f.Bundle]
				got, err := os.ReadFile(filepath.Join(n.cfg.Root, f.Root))
				if ok != (err == nil) || ok && !bytes.Equal(got, b) {
					t.Errorf("%s: %v (in medium: %v)", f.Root, err, ok)
				}
			}
			if entries, _ := os.ReadDir(n.cfg.Root); len(entries) != len(res.Changes) {
				t.Errorf("RootDir holds %v after %v", entries, res.Changes)
			}
			// The same medium again changes nothing.
			res, err = Bootstrap(n.cfg, medium)
			if err != nil || !strings.Contains(strings.Join(res.Changes, ""), "nothing to install") {
				t.Errorf("second bootstrap: %v %v", res.Changes, err)
			}
		})
	}
}
