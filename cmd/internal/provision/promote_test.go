package provision

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer"
)

// rotation is a node in the middle of a key rotation: the next key made
// and its certificate installed, as before `provision promote`.
type rotation struct {
	*node
	oldSeeds, nextSeeds [2][]byte // key files' bytes: ed25519, ml-dsa-65
	nextCert            []byte
}

func newRotation(t *testing.T) *rotation {
	t.Helper()
	n := newNode(t)
	if _, err := Install(n.cfg, n.bundle(t)); err != nil {
		t.Fatal(err)
	}
	n.addNextKey(t)
	f := n.files(t)
	if _, err := Install(n.cfg, writeBundle(t, f)); err != nil {
		t.Fatal(err)
	}
	r := &rotation{node: n, nextCert: f[site.NextAttestationCert]}
	for i, name := range []string{signer.Ed25519KeyFile, signer.MLDSA65KeyFile} {
		r.oldSeeds[i] = readFile(t, filepath.Join(n.State, site.KeysDir, name))
		r.nextSeeds[i] = readFile(t, filepath.Join(n.State, site.KeysDir, signer.NextPrefix+name))
	}
	return r
}

// assertPromoted checks the end state of a rotation: the next key under
// the current names and certified by the current generation, no next
// files, no trace of the old key, and the daemon able to load it.
func (r *rotation) assertPromoted(t *testing.T) {
	t.Helper()
	keys := filepath.Join(r.State, site.KeysDir)
	for i, name := range []string{signer.Ed25519KeyFile, signer.MLDSA65KeyFile} {
		if b := readFile(t, filepath.Join(keys, name)); !bytes.Equal(b, r.nextSeeds[i]) {
			t.Errorf("%s is not the former next key", name)
		}
		if exists(filepath.Join(keys, signer.NextPrefix+name)) {
			t.Errorf("%s%s left behind", signer.NextPrefix, name)
		}
	}
	entries, err := os.ReadDir(keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b := readFile(t, filepath.Join(keys, e.Name()))
		if bytes.Equal(b, r.oldSeeds[0]) || bytes.Equal(b, r.oldSeeds[1]) {
			t.Errorf("the old key is still in %s", e.Name())
		}
	}
	gen := filepath.Join(r.State, site.GensDir, r.link(t))
	if b := readFile(t, filepath.Join(gen, site.AttestationCert)); !bytes.Equal(b, r.nextCert) {
		t.Error("attestation-cert.pem is not the former next certificate")
	}
	if exists(filepath.Join(gen, site.NextAttestationCert)) {
		t.Error("the current generation still has a next certificate")
	}
	rep, err := Check(r.cfg, gen)
	if err != nil || len(rep.Problems) > 0 {
		t.Errorf("the promoted generation does not check: %v\n%s", err, problemsText(rep))
	}
	n, err := nodeCert(site.AttestationCert, r.nextCert)
	if err != nil {
		t.Fatal(err)
	}
	roots := poolOf([]*x509.Certificate{r.Attest.Cert})
	ks, err := signer.LoadKeySet(signer.LoadConfig{Dir: keys, CertDir: gen, Production: true, Roots: roots, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	if k := ks.Active(t0); k == nil || k.ID() != signer.KeyID(n.Ed25519, n.MLDSA65, false) || len(ks.Published(t0)) != 1 {
		t.Errorf("the daemon would load %v (%d keys published)", k, len(ks.Published(t0)))
	}
}

// TestPromote: the rotation ends with the next key alone.
func TestPromote(t *testing.T) {
	r := newRotation(t)
	before := r.link(t)
	res, err := Promote(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.assertPromoted(t)
	if res.Previous != before || res.Generation != r.link(t) || len(res.Warnings) > 0 {
		t.Errorf("result %+v, before %s", res, before)
	}
	if len(r.gensDir(t)) != 2 {
		t.Errorf("generations %v", r.gensDir(t))
	}
	r.assertClean(t)
	if _, err := Promote(r.cfg); err == nil || !strings.Contains(err.Error(), "nothing to promote") {
		t.Errorf("second promote: %v", err)
	}
	// The previous generation certifies a key that is gone: no rollback.
	if _, err := Rollback(r.cfg, false); err == nil || !strings.Contains(err.Error(), "attestation-cert.pem") {
		t.Errorf("rollback past a promote: %v", err)
	}
}

// TestPromoteCompletesAfterACrash: stopped after any step, promote run
// again finishes the rotation.
func TestPromoteCompletesAfterACrash(t *testing.T) {
	var steps []string
	{
		r := newRotation(t)
		r.cfg.step = recordSteps(&steps)
		if _, err := Promote(r.cfg); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("steps: %v", steps)
	for _, want := range []string{"rename generation", "rename next-signing-ed25519.pem", "rename next-signing-mldsa65.pem", "swap", "prune"} {
		if !contains(steps, want) {
			t.Fatalf("promote has no step %q: %v", want, steps)
		}
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			r := newRotation(t)
			cfg := r.cfg
			cfg.step = crashAt(step)
			if !crashed(func() { Promote(cfg) }) {
				t.Fatalf("no crash at %q", step)
			}
			if _, err := site.Resolve(r.State); err != nil {
				t.Fatalf("after a crash at %q the site does not resolve: %v", step, err)
			}
			_, err := Promote(r.cfg)
			if step == "prune" {
				// Crashed after the swap: the rotation is complete.
				if err == nil || !strings.Contains(err.Error(), "nothing to promote") {
					t.Errorf("promote after a completed rotation: %v", err)
				}
			} else if err != nil {
				t.Fatalf("promote after a crash at %q: %v", step, err)
			}
			r.assertPromoted(t)
		})
	}
}

// TestPromoteRefusals: promote without a rotation, or with a next
// certificate it cannot use, is refused and changes nothing.
func TestPromoteRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) *node
		cfg   func(c Config) Config
		want  string
	}{
		{name: "not provisioned", setup: func(t *testing.T) *node { return newNode(t) }, want: "not provisioned"},
		{name: "no rotation", setup: func(t *testing.T) *node {
			n := newNode(t)
			if _, err := Install(n.cfg, n.bundle(t)); err != nil {
				t.Fatal(err)
			}
			return n
		}, want: "nothing to promote"},
		{name: "next key without its certificate installed", setup: func(t *testing.T) *node {
			n := newNode(t)
			if _, err := Install(n.cfg, n.bundle(t)); err != nil {
				t.Fatal(err)
			}
			n.addNextKey(t)
			return n
		}, want: "install a bundle with the next key's certificate first"},
		{name: "next certificate expired", setup: func(t *testing.T) *node { return newRotation(t).node },
			cfg: func(c Config) Config { c.Now = t0.Add(40 * day); return c }, want: "next-attestation-cert.pem: not valid at"},
		{name: "next key replaced after its certificate", setup: func(t *testing.T) *node {
			r := newRotation(t)
			for _, f := range []string{signer.Ed25519KeyFile, signer.MLDSA65KeyFile} {
				os.Remove(filepath.Join(r.State, site.KeysDir, signer.NextPrefix+f))
			}
			r.addNextKey(t)
			return r.node
		}, want: "does not hold the Ed25519 key next-attestation-cert.pem certifies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.setup(t)
			cfg := n.cfg
			if tt.cfg != nil {
				cfg = tt.cfg(cfg)
			}
			before, gens := n.link(t), n.gensDir(t)
			if _, err := Promote(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("promote: %v, want %q", err, tt.want)
			}
			if n.link(t) != before || strings.Join(n.gensDir(t), ",") != strings.Join(gens, ",") {
				t.Errorf("a refused promote changed the site")
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
