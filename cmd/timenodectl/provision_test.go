package main

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/netsvc/site/sitetest"
	"github.com/aunsorm/timenode/signer"
)

// provT0 is the injected time of the provision tests (--now).
var provT0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// provNode is a first-booted node and the flags that point the command
// at it.
type provNode struct {
	*sitetest.Node
	root string
}

func newProvNode(t *testing.T) *provNode {
	t.Helper()
	return &provNode{Node: sitetest.NewNode(t, provT0), root: filepath.Join(t.TempDir(), "site")}
}

func (n *provNode) flags() []string {
	return []string{"--state", n.State, "--root", n.root, "--now", provT0.Format(time.RFC3339)}
}

// bundle writes a valid bundle for the node (a 30-day server
// certificate, within the 90-day policy), applying edit to its files.
func (n *provNode) bundle(t *testing.T, edit func(map[string][]byte)) string {
	t.Helper()
	leaf := n.ServerCA.Leaf(t, n.TLSKey(t).Public(), "tn1.test.example", []string{"tn1.test.example"},
		x509.ExtKeyUsageServerAuth, provT0.Add(-time.Minute), provT0.Add(30*24*time.Hour))
	f := map[string][]byte{
		site.TLSCert:         signer.EncodeCerts(leaf, n.ServerCA.Cert.Raw),
		site.ServerCA:        n.ServerCA.PEM(),
		site.ClientCA:        n.ClientCA.PEM(),
		site.AttestationCA:   signer.EncodeCerts(n.Attest.Cert.Raw),
		site.AttestationCert: n.AttestationCert(t, "", provT0),
		site.AllowList:       []byte("kms.test.example\n"),
		site.Env:             []byte("NTP_AUTHORITY_ID=time.test.example\n"),
	}
	if _, err := os.Stat(filepath.Join(n.State, site.KeysDir, signer.NextPrefix+signer.Ed25519KeyFile)); err == nil {
		f[site.NextAttestationCert] = n.AttestationCert(t, signer.NextPrefix, provT0)
	}
	if edit != nil {
		edit(f)
	}
	dir := t.TempDir()
	for name, b := range f {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// run runs timenodectl with args and returns exit code, stdout, stderr.
func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := dispatch(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestProvisionUsage: help goes to stdout with exit 0; usage errors
// exit 2 and say what is wrong.
func TestProvisionUsage(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"provision", "-h"}, 0, "usage: timenodectl provision SUBCOMMAND", ""},
		{[]string{"provision", "help"}, 0, "  promote    end a key rotation", ""},
		{[]string{"provision", "help", "promote"}, 0, "usage: timenodectl provision promote [flags]", ""},
		{[]string{"provision", "check", "-h"}, 0, "usage: timenodectl provision check [flags] BUNDLE_DIR", ""},
		{[]string{"provision", "csr", "--help"}, 0, "tls|attestation|next-attestation", ""},
		{[]string{"provision"}, 2, "", "usage: timenodectl provision SUBCOMMAND"},
		{[]string{"provision", "deploy"}, 2, "", `unknown subcommand "deploy"`},
		{[]string{"provision", "check"}, 2, "", "missing BUNDLE_DIR"},
		{[]string{"provision", "status", "extra"}, 2, "", `unexpected argument "extra"`},
		{[]string{"provision", "check", "--now", "tomorrow", "dir"}, 2, "", "--now: parsing time"},
		{[]string{"provision", "csr", "--root", "/x", "tls"}, 2, "", "flag provided but not defined: -root"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := run(tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out, errOut, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestProvisionCheck: a good bundle exits 0 with a summary; each bad one
// exits 1 naming the file on stderr.
func TestProvisionCheck(t *testing.T) {
	n := newProvNode(t)
	tests := []struct {
		name   string
		edit   func(map[string][]byte)
		code   int
		stdout string
		stderr string
	}{
		{name: "good", code: 0, stdout: `ok       tls.crt: server certificate "tn1.test.example"`},
		{name: "allow-list with a space", edit: func(f map[string][]byte) { f[site.AllowList] = []byte("a b\n") }, code: 1, stderr: "PROBLEM  allow.txt:1:"},
		{name: "unknown env key", edit: func(f map[string][]byte) { f[site.Env] = []byte("NTP_AUTHORITY_ID=x.example\nFOO=1\n") }, code: 1, stderr: "site.env:2: FOO is not a site setting"},
		{name: "unknown file", edit: func(f map[string][]byte) { f["tls.cert"] = nil }, code: 1, stderr: "tls.cert: unknown file"},
		{name: "bad ssh key", edit: func(f map[string][]byte) { f["authorized_keys"] = []byte("ssh-ed25519 nope\n") }, code: 1, stderr: "authorized_keys:1:"},
		{name: "development attestation certificate", edit: func(f map[string][]byte) {
			dev, err := signer.NewCA("dev", true, provT0, 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			f[site.AttestationCA] = signer.EncodeCerts(dev.Cert.Raw)
		}, code: 1, stderr: "attestation-ca.pem: \"dev DEVELOPMENT\" is a development CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(append(append([]string{"provision", "check"}, n.flags()...), n.bundle(t, tt.edit))...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s\nwant %q / %q", code, tt.code, out, errOut, tt.stdout, tt.stderr)
			}
			if tt.code != 0 && !strings.Contains(errOut, "refused:") {
				t.Errorf("no verdict on stderr:\n%s", errOut)
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(n.State, site.Link)); err == nil {
		t.Error("check changed the node")
	}
}

// TestProvisionLifecycle: status of a fresh node, install, a refused
// install, rollback, a key rotation ended by promote, the CSRs and the
// medium, as the operator runs them.
func TestProvisionLifecycle(t *testing.T) {
	n := newProvNode(t)
	flags := n.flags()
	cmd := func(sub string, args ...string) []string {
		f := flags
		switch sub {
		case "rollback", "promote":
			f = []string{"--state", n.State, "--now", provT0.Format(time.RFC3339)}
		case "csr":
			f = []string{"--state", n.State}
		case "bootstrap":
			f = []string{"--root", n.root}
		}
		return append(append([]string{"provision", sub}, f...), args...)
	}
	expect := func(args []string, code int, stdout, stderr string) string {
		t.Helper()
		c, out, errOut := run(args...)
		if c != code || !strings.Contains(out, stdout) || !strings.Contains(errOut, stderr) {
			t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s\nwant %q / %q", strings.Join(args, " "), c, code, out, errOut, stdout, stderr)
		}
		return out
	}
	expect(cmd("status"), 0, "not provisioned", "")
	expect(cmd("rollback"), 1, "", "not provisioned")

	out := expect(cmd("install", n.bundle(t, nil)), 0, "installed ", "")
	first := strings.Fields(out)[3] // "installed DIR: generation GEN is current"
	for _, want := range []string{"tls.crt: new", "next:\n  systemctl reload-or-restart timenoded"} {
		if !strings.Contains(out, want) {
			t.Errorf("install output lacks %q:\n%s", want, out)
		}
	}
	expect(cmd("install", n.bundle(t, func(f map[string][]byte) { f[site.AllowList] = []byte("two names\n") })), 1, "", "allow.txt:1:")
	expect(cmd("rollback"), 1, "", "no previous generation")
	expect(cmd("status"), 0, "site: generation "+first, "")
	// A re-issued attestation certificate changes what clients pin.
	expect(cmd("install", n.bundle(t, nil)), 1, "", "AUNSORM_CALIBRATION_FINGERPRINT")
	second := strings.Fields(expect(cmd("install", "--new-pin", n.bundle(t, nil)), 0, "tls.crt: changed", "must be given"))[3]
	expect(cmd("rollback"), 0, "generation "+first+" is current again", "")
	expect(cmd("rollback"), 0, "generation "+second+" is current again", "")

	// A rotation: next key, its certificate installed, then promoted.
	if c, _, e := run("keys", "generate", "--dir", filepath.Join(n.State, site.KeysDir), "--next"); c != 0 {
		t.Fatalf("keys generate --next: %s", e)
	}
	// The rotation bundle leaves the pinned certificate out: it is kept.
	noCur := func(f map[string][]byte) { delete(f, site.AttestationCert) }
	expect(cmd("install", n.bundle(t, noCur)), 0, "next-attestation-cert.pem: new", "the installed certificate")
	// The daemon would refuse the previous generation: it lacks the
	// next key's certificate.
	expect(cmd("rollback"), 1, "", "next-attestation-cert.pem: missing")
	expect(cmd("promote"), 0, "is now the only key", "")
	expect(cmd("promote"), 1, "", "nothing to promote")
	expect(cmd("rollback"), 1, "", "--force switches anyway")

	// Requests.
	csr, err := makeCSR(filepath.Join(n.State, site.KeysDir), "", "time.test.example")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(n.State, site.TLSDir), 0o700)
	if err := os.WriteFile(filepath.Join(n.State, site.TLSDir, "attestation.csr"), csr, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := expect(cmd("csr", "attestation"), 0, "", ""); out != string(csr) {
		t.Errorf("csr attestation printed %q", out)
	}
	expect(cmd("csr", "tls"), 1, "", "node.csr: none")

	// The medium.
	medium := t.TempDir()
	os.WriteFile(filepath.Join(medium, "authorized_keys"), []byte(testSSHKey+"\n"), 0o644)
	expect(cmd("bootstrap", medium), 0, "authorized_keys: replaced from authorized_keys", "")
	expect(cmd("status"), 0, filepath.Join(n.root, "authorized_keys")+": 1 SSH key", "")
}

// testSSHKey is an Ed25519 public key (ssh-keygen -t ed25519).
const testSSHKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEfL0vbbzN1yHXtTVzw6h5mL6XcaHAhYMKAAE1jrZV+U admin@test"
