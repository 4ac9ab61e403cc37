package main

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/netsvc"
	"github.com/aunsorm/timenode/netsvc/mtls"
	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/netsvc/site/sitetest"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/timing"
)

// t0 is the injected time of the provisioning tests.
var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// siteConfig is the appliance's configuration: --production, nothing but
// the state directory (the unit passes no TLS paths or credentials) and
// the board settings site.env may add.
func siteConfig(t *testing.T, state string, board ...string) *config {
	t.Helper()
	cfg, err := parseConfig(append([]string{"--production", "--state-dir", state}, board...), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.siteMode() {
		t.Fatal("--production without TLS paths is not site mode")
	}
	return cfg
}

// TestSiteMaterialLoads: a provisioned state directory gives the daemon
// its TLS identity, client CA, allow-list and production signing keys
// certified by the site's attestation CA.
func TestSiteMaterialLoads(t *testing.T) {
	n := sitetest.NewNode(t, t0)
	n.Activate(t, n.Bundle(t, t0, "kms.test.example", "spiffe://test/ns/auth/sa/api"), "g1")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := loadMaterial(siteConfig(t, n.State), t0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer m.keys.Close()
	if got := strings.Join(m.policy.Allowed, ","); got != "kms.test.example,spiffe://test/ns/auth/sa/api" {
		t.Errorf("allowed clients %q", got)
	}
	if filepath.Base(m.site) != "g1" || m.tls.Leaf.Subject.CommonName != "timenode test node" {
		t.Errorf("site %q, leaf %q", m.site, m.tls.Leaf.Subject.CommonName)
	}
	k := m.keys.Active(t0)
	if k == nil || k.Public().Development {
		t.Fatalf("active key %v: want a production key", k)
	}
}

// TestSiteMaterialRefusals: what an unprovisioned or half-provisioned
// node lacks is named.
func TestSiteMaterialRefusals(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name   string
		break_ func(t *testing.T, n *sitetest.Node, gen string)
		want   string
	}{
		{"not provisioned", func(t *testing.T, n *sitetest.Node, gen string) {
			os.Remove(filepath.Join(n.State, site.Link))
		}, "not provisioned"},
		{"empty allow-list", func(t *testing.T, n *sitetest.Node, gen string) {
			os.WriteFile(filepath.Join(gen, site.AllowList), []byte("# nobody\n"), 0o600)
		}, "no client identity"},
		{"attestation CA of another site", func(t *testing.T, n *sitetest.Node, gen string) {
			other := sitetest.NewNode(t, t0)
			os.WriteFile(filepath.Join(gen, site.AttestationCA), signer.EncodeCerts(other.Attest.Cert.Raw), 0o600)
		}, site.AttestationCert},
		{"link outside the generations", func(t *testing.T, n *sitetest.Node, gen string) {
			os.Remove(filepath.Join(n.State, site.Link))
			os.Symlink("/etc", filepath.Join(n.State, site.Link))
		}, "want a generation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := sitetest.NewNode(t, t0)
			n.Activate(t, n.Bundle(t, t0, "kms.test.example"), "g1")
			tc.break_(t, n, filepath.Join(n.State, site.GensDir, "g1"))
			_, err := loadMaterial(siteConfig(t, n.State), t0, log)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// TestReloadIsAllOrNothing: a new generation whose TLS certificate is good
// but whose attestation certificate does not certify the node's keys
// changes nothing (before, TLS swapped while the keys were refused); a
// good generation then rotates TLS, allow-list and signing key together.
func TestReloadIsAllOrNothing(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := sitetest.NewNode(t, t0)
	n.Activate(t, n.Bundle(t, t0, "old-client.test.example"), "g1")
	cfg := siteConfig(t, n.State)
	r, metrics := startedDaemon(t, cfg, log)
	keysBefore, leafBefore := keyIDs(r.sig.Keys()), r.tls.Material().Leaf

	// A bad generation: fresh TLS certificate, attestation certificate of
	// a key this node does not have.
	other := sitetest.NewNode(t, t0)
	bad := n.Bundle(t, t0.Add(time.Hour), "new-client.test.example")
	os.WriteFile(filepath.Join(bad, site.AttestationCert), other.AttestationCert(t, "", t0), 0o600)
	n.Activate(t, bad, "g2")
	if st := reload(cfg, r, t0.Add(time.Hour), metrics, log); !strings.HasPrefix(st, "reload refused") {
		t.Fatalf("reload of a bad generation: %q", st)
	}
	if !r.tls.Material().Leaf.Equal(leafBefore) || keyIDs(r.sig.Keys()) != keysBefore {
		t.Fatal("a refused reload changed the TLS certificate or the signing keys")
	}
	if got := r.tls.Policy().Allowed; len(got) != 1 || got[0] != "old-client.test.example" {
		t.Fatalf("a refused reload changed the allow-list to %v", got)
	}

	// A good generation with a next key: everything rotates together.
	if err := genNextKey(n); err != nil {
		t.Fatal(err)
	}
	n.Activate(t, n.Bundle(t, t0.Add(2*time.Hour), "new-client.test.example"), "g3")
	if st := reload(cfg, r, t0.Add(2*time.Hour), metrics, log); st != "reloaded" {
		t.Fatalf("reload of a good generation: %q", st)
	}
	if r.tls.Material().Leaf.Equal(leafBefore) {
		t.Error("TLS certificate not rotated")
	}
	if got := r.tls.Policy().Allowed; len(got) != 1 || got[0] != "new-client.test.example" {
		t.Errorf("allow-list %v after the reload", got)
	}
	if after := keyIDs(r.sig.Keys()); after == keysBefore || !strings.HasPrefix(after, keysBefore+",") {
		t.Errorf("keys %q after the reload, want the current key %q then the next one", after, keysBefore)
	}
}

// startedDaemon loads cfg's material at t0 and returns what a started
// daemon reloads into, with its metrics; the keys are closed at cleanup.
func startedDaemon(t *testing.T, cfg *config, log *slog.Logger) (reloadable, *netsvc.Metrics) {
	t.Helper()
	m, err := loadMaterial(cfg, t0, log)
	if err != nil {
		t.Fatal(err)
	}
	r := reloadable{tls: mtls.NewManager(m.tls, m.policy), sig: signer.NewSignerSet(m.keys, func() time.Time { return t0 })}
	t.Cleanup(func() { r.sig.Close() })
	clk := clocktest.NewManual(t0)
	disc := timing.New(timing.DefaultConfig(), clocktest.NewOscillator(clk, clocktest.OscillatorConfig{}), log)
	return r, netsvc.NewMetrics(clk, disc, disc.Rejected)
}

// genNextKey makes the node's next signing key, as `timenodectl keys
// generate --next` does.
func genNextKey(n *sitetest.Node) error {
	_, err := keyfile.GeneratePair(filepath.Join(n.State, site.KeysDir), rand.Reader, keyfile.GenerateOptions{Prefix: signer.NextPrefix})
	return err
}

// TestReloadRefusesFIFOs: a FIFO in place of the TLS key, a certificate,
// the allow-list or the NTS witnesses' CA refuses the reload at once, naming the file, and the next
// good reload still rotates (before, opening the FIFO blocked the reload
// loop forever, so every later SIGHUP was silently ignored). A daemon
// starting on one exits with the same error instead of hanging.
func TestReloadRefusesFIFOs(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct{ name, path string }{
		{"TLS key", filepath.Join(site.KeysDir, site.TLSKey)},
		{"TLS certificate", filepath.Join(site.Link, site.TLSCert)},
		{"allow-list", filepath.Join(site.Link, site.AllowList)},
		{"attestation certificate", filepath.Join(site.Link, site.AttestationCert)},
		{"NTS witnesses' CA", filepath.Join(site.Link, site.WitnessCA)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := sitetest.NewNode(t, t0)
			b := n.Bundle(t, t0, "old-client.test.example")
			if err := os.WriteFile(filepath.Join(b, site.WitnessCA), n.ServerCA.PEM(), 0o600); err != nil {
				t.Fatal(err)
			}
			n.Activate(t, b, "g1")
			cfg := siteConfig(t, n.State, "--witness-nts", "nts.test.example:4460")
			r, metrics := startedDaemon(t, cfg, log)

			target, err := filepath.EvalSymlinks(filepath.Join(n.State, tc.path))
			if err != nil {
				t.Fatal(err)
			}
			saved, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(target)
			if err := syscall.Mkfifo(target, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			done := make(chan string, 1)
			go func() { done <- reload(cfg, r, t0.Add(time.Hour), metrics, log) }()
			select {
			case st := <-done:
				if !strings.HasPrefix(st, "reload refused") || !strings.Contains(st, "not a regular file") || !strings.Contains(st, filepath.Base(target)) {
					t.Fatalf("reload with a FIFO: %q, want a refusal naming the file", st)
				}
			case <-time.After(time.Minute): // a bound on a hang, not a timing claim
				t.Fatal("reload blocked on a FIFO")
			}
			if _, err := loadMaterial(cfg, t0, log); err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Fatalf("start with a FIFO: %v, want a refusal", err)
			}

			os.Remove(target)
			if err := os.WriteFile(target, saved, 0o600); err != nil {
				t.Fatal(err)
			}
			n.Activate(t, n.Bundle(t, t0.Add(2*time.Hour), "new-client.test.example"), "g2")
			if st := reload(cfg, r, t0.Add(2*time.Hour), metrics, log); st != "reloaded" {
				t.Fatalf("the good reload after the refused one: %q", st)
			}
			if got := r.tls.Policy().Allowed; len(got) != 1 || got[0] != "new-client.test.example" {
				t.Errorf("allow-list %v after the good reload", got)
			}
		})
	}
}

// TestProductionValidatesBeforeTakingTheClock: production opens the
// kernel clock in steering mode, so a start whose TLS or signing material
// is refused must fail before the hardware is opened (before, the kernel
// clock was taken over first). The hardware is injected; nothing here
// touches the host clock.
func TestProductionValidatesBeforeTakingTheClock(t *testing.T) {
	errOpened := errors.New("hardware opened")
	for _, tc := range []struct {
		name     string
		break_   func(t *testing.T, n *sitetest.Node)
		wantOpen bool
	}{
		{"good material", func(*testing.T, *sitetest.Node) {}, true},
		{"TLS key world-readable", func(t *testing.T, n *sitetest.Node) {
			os.Chmod(filepath.Join(n.State, site.KeysDir, site.TLSKey), 0o644)
		}, false},
		{"signing key missing", func(t *testing.T, n *sitetest.Node) {
			os.Remove(filepath.Join(n.State, site.KeysDir, signer.MLDSA65KeyFile))
		}, false},
		{"not provisioned", func(t *testing.T, n *sitetest.Node) {
			os.Remove(filepath.Join(n.State, site.Link))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := sitetest.NewNode(t, t0)
			n.Activate(t, n.Bundle(t, t0, "kms.test.example"), "g1")
			tc.break_(t, n)
			cfg := siteConfig(t, n.State)
			opened := false
			cfg.now = func() time.Time { return t0 }
			cfg.openHardware = func(context.Context, *config, *slog.Logger) (*hardware, error) {
				opened = true
				return nil, errOpened
			}
			err := serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if opened != tc.wantOpen {
				t.Fatalf("hardware opened: %v, want %v (serve: %v)", opened, tc.wantOpen, err)
			}
			if tc.wantOpen && !errors.Is(err, errOpened) || !tc.wantOpen && err == nil {
				t.Fatalf("serve: %v", err)
			}
			t.Log(err)
		})
	}
}
