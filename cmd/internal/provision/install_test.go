package provision

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/aunsorm/timenode/netsvc/site"
)

// TestInstall: a good bundle becomes the current generation, complete,
// private to the daemon's user; the root files land in RootDir.
func TestInstall(t *testing.T) {
	needNft(t)
	n := newNode(t)
	files := n.files(t)
	files[BundleAuthorizedKeys] = []byte(sshKey(t, "admin@test") + "\n")
	files[BundleNftables] = []byte("flush set inet timenode mgmt_v4\nadd element inet timenode mgmt_v4 { 10.90.0.0/24 }\n")
	files[BundleModules] = []byte("pps_ldisc\n")
	files["README"] = []byte("notes\n")
	res, err := Install(n.cfg, writeBundle(t, files))
	if err != nil {
		t.Fatal(err)
	}
	gen := n.link(t)
	if gen == "" || gen != res.Generation || res.Previous != "" {
		t.Fatalf("link %q, result %q (previous %q)", gen, res.Generation, res.Previous)
	}
	if !strings.HasPrefix(gen, "20261203T120000Z-") {
		t.Errorf("generation %q is not named after the injected time", gen)
	}
	dir := filepath.Join(n.State, site.GensDir, gen)
	checkMode(t, dir, 0o700)
	for _, name := range siteFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if _, inBundle := files[name]; optionalFiles[name] && !inBundle {
			if err == nil {
				t.Errorf("%s installed but not in the bundle", name)
			}
			continue
		}
		if err != nil || !bytes.Equal(b, files[name]) {
			t.Errorf("%s: %v, or not the bundle's bytes", name, err)
		}
		checkMode(t, filepath.Join(dir, name), 0o600)
	}
	if exists(filepath.Join(dir, "README")) {
		t.Error("README installed")
	}
	for _, f := range rootFiles {
		p := filepath.Join(n.cfg.Root, f.Root)
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, files[f.Bundle]) {
			t.Errorf("%s: %v, or not the bundle's %s", p, err, f.Bundle)
		}
		checkMode(t, p, 0o644)
	}
	checkMode(t, n.cfg.Root, 0o755)
	n.assertClean(t)
	// The daemon's view: the new generation resolves and checks clean.
	r, err := Check(n.cfg, dir)
	if err != nil || len(r.Problems) > 0 {
		t.Errorf("the installed generation does not check: %v\n%s", err, problemsText(r))
	}
	next := strings.Join(res.Next, "\n")
	for _, want := range []string{"systemctl reload-or-restart timenoded", "systemctl reload nftables", "timenode-pps-modules"} {
		if !strings.Contains(next, want) {
			t.Errorf("next steps lack %q:\n%s", want, next)
		}
	}
}

// TestInstallKeepsOnePrevious: each install keeps the generation it
// replaced and deletes older ones; the same bundle twice changes nothing.
func TestInstallKeepsOnePrevious(t *testing.T) {
	n := newNode(t)
	var gens []string
	for i := 0; i < 3; i++ {
		res, err := Install(n.cfg, n.bundle(t)) // a new TLS certificate each time
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && res.Previous != gens[i-1] {
			t.Errorf("install %d: previous %q, want %q", i, res.Previous, gens[i-1])
		}
		gens = append(gens, res.Generation)
	}
	got := n.gensDir(t)
	want := []string{gens[1], gens[2]}
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("generations %v, want %v", got, want)
	}
	// Installing the current material again makes no generation.
	same := writeBundle(t, mustReadGen(t, n.State, gens[2]))
	res, err := Install(n.cfg, same)
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation != gens[2] || len(n.gensDir(t)) != 2 || !strings.Contains(strings.Join(res.Changes, "\n"), "nothing to install") {
		t.Errorf("same bundle again: %+v, generations %v", res, n.gensDir(t))
	}
}

// TestInstallRefusedChangesNothing: a refused bundle leaves the link,
// the generations and RootDir as they were.
func TestInstallRefusedChangesNothing(t *testing.T) {
	n := newNode(t)
	if _, err := Install(n.cfg, n.bundle(t)); err != nil {
		t.Fatal(err)
	}
	before, gens := n.link(t), n.gensDir(t)
	f := n.files(t)
	f[site.AllowList] = []byte("two names on one line\n")
	f[BundleModules] = []byte("pps_ldisc\n")
	res, err := Install(n.cfg, writeBundle(t, f))
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "allow.txt:1:") {
		t.Fatalf("install of a bad bundle: %v", err)
	}
	if res == nil || len(res.Report.Problems) != 1 {
		t.Errorf("report %+v", res)
	}
	if n.link(t) != before || strings.Join(n.gensDir(t), ",") != strings.Join(gens, ",") {
		t.Errorf("refused bundle changed the site: %s %v", n.link(t), n.gensDir(t))
	}
	if exists(filepath.Join(n.cfg.Root, site.Modules)) {
		t.Error("refused bundle wrote a root file")
	}
}

// fullBundle is a bundle with files for root services too (a new SSH
// key each time, so each install writes them).
func (n *node) fullBundle(t *testing.T) string {
	t.Helper()
	f := n.files(t)
	f[BundleAuthorizedKeys] = []byte(sshKey(t, "admin@test") + "\n")
	f[BundleModules] = []byte("pps_ldisc\n")
	return writeBundle(t, f)
}

// TestInstallFailureKeepsOldGeneration: an I/O error at any step of an
// install (injected) leaves the old generation current, no temporary
// link or generation, and the node installable.
func TestInstallFailureKeepsOldGeneration(t *testing.T) {
	var steps []string
	{
		n := newNode(t)
		n.cfg.step = recordSteps(&steps)
		if _, err := Install(n.cfg, n.fullBundle(t)); err != nil {
			t.Fatal(err)
		}
	}
	if !contains(steps, "write root "+site.AuthorizedKeys) || steps[len(steps)-1] != "swap" {
		t.Fatalf("steps %v", steps)
	}
	t.Logf("steps: %v", steps)
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			n := newNode(t)
			if _, err := Install(n.cfg, n.bundle(t)); err != nil {
				t.Fatal(err)
			}
			old := n.link(t)
			cfg := n.cfg
			cfg.step = func(s string) error {
				if s == step {
					return syscall.ENOSPC
				}
				return nil
			}
			if _, err := Install(cfg, n.fullBundle(t)); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("install with a failing %q: %v", step, err)
			}
			if got := n.link(t); got != old {
				t.Errorf("after a failed %q the site is %s, want the old %s", step, got, old)
			}
			if got := n.gensDir(t); len(got) != 1 || got[0] != old {
				t.Errorf("generations %v, want only %s", got, old)
			}
			n.assertClean(t)
			if _, err := Install(n.cfg, n.bundle(t)); err != nil {
				t.Errorf("install after the failure: %v", err)
			}
		})
	}
}

// TestInstallCrashKeepsOldGeneration: a crash at any step (nothing
// cleaned up) leaves the old generation current, and the next install
// succeeds and removes the leftovers.
func TestInstallCrashKeepsOldGeneration(t *testing.T) {
	for _, step := range []string{"write allow.txt", "write tls.crt", "rename generation", "write root " + site.Modules, "swap"} {
		t.Run(step, func(t *testing.T) {
			n := newNode(t)
			if _, err := Install(n.cfg, n.bundle(t)); err != nil {
				t.Fatal(err)
			}
			old := n.link(t)
			cfg := n.cfg
			cfg.step = crashAt(step)
			if !crashed(func() { Install(cfg, n.fullBundle(t)) }) {
				t.Fatalf("no step %q", step)
			}
			if got := n.link(t); got != old {
				t.Errorf("after a crash at %q the site is %s, want the old %s", step, got, old)
			}
			if len(n.gensDir(t)) < 2 && !exists(filepath.Join(n.State, tmpLink)) {
				t.Errorf("a crash at %q left nothing behind: not a crash", step)
			}
			if _, err := site.Resolve(n.State); err != nil {
				t.Errorf("the daemon cannot resolve the site: %v", err)
			}
			res, err := Install(n.cfg, n.bundle(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := n.gensDir(t); len(got) != 2 || res.Previous != old {
				t.Errorf("after recovery: generations %v, previous %s", got, res.Previous)
			}
			n.assertClean(t)
		})
	}
}

// TestInstallRepairsABrokenLink: a site link that resolves nowhere is
// replaced, with a warning.
func TestInstallRepairsABrokenLink(t *testing.T) {
	n := newNode(t)
	if err := os.Symlink(filepath.Join(site.GensDir, "gone"), filepath.Join(n.State, site.Link)); err != nil {
		t.Fatal(err)
	}
	res, err := Install(n.cfg, n.bundle(t))
	if err != nil {
		t.Fatal(err)
	}
	if n.link(t) != res.Generation || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "broken site link") {
		t.Errorf("link %s, result %+v", n.link(t), res)
	}
}

// TestInstallHandsFilesToTheDaemonsUser: run as root (sudo) in a state
// directory of the daemon's dynamic user, the generation is that user's.
func TestInstallHandsFilesToTheDaemonsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand files to another user (the appliance's sudo)")
	}
	const uid, gid = 4242, 4243
	n := newNode(t)
	bundle := n.bundle(t)
	err := filepath.Walk(n.State, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Install(n.cfg, bundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{site.GensDir, filepath.Join(site.GensDir, res.Generation), filepath.Join(site.GensDir, res.Generation, site.TLSCert), site.Link} {
		fi, err := os.Lstat(filepath.Join(n.State, p))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
	}
}

// TestRollback: back to the previous generation and forth again; none
// to go back to is refused; a generation the node can no longer load is
// refused unless forced.
func TestRollback(t *testing.T) {
	n := newNode(t)
	if _, err := Rollback(n.cfg, false); err == nil || !strings.Contains(err.Error(), "not provisioned") {
		t.Errorf("rollback unprovisioned: %v", err)
	}
	first, err := Install(n.cfg, n.bundle(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Rollback(n.cfg, false); err == nil || !strings.Contains(err.Error(), "no previous generation") {
		t.Errorf("rollback with one generation: %v", err)
	}
	second, err := Install(n.cfg, n.bundle(t))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Rollback(n.cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	if n.link(t) != first.Generation || res.Previous != second.Generation {
		t.Errorf("after rollback: %s (previous %s), want %s", n.link(t), res.Previous, first.Generation)
	}
	if !strings.Contains(strings.Join(res.Changes, "\n"), "tls.crt: changed") {
		t.Errorf("changes %v", res.Changes)
	}
	if _, err := Rollback(n.cfg, false); err != nil || n.link(t) != second.Generation {
		t.Errorf("second rollback: %v, at %s", err, n.link(t))
	}
	n.assertClean(t)

	// Past its certificates' lifetime the previous generation is refused.
	late := n.cfg
	late.Now = t0.Add(45 * day)
	if _, err := Rollback(late, false); err == nil || !strings.Contains(err.Error(), "attestation-cert.pem") || n.link(t) != second.Generation {
		t.Errorf("rollback to an expired generation: %v, at %s", err, n.link(t))
	}
	if _, err := Rollback(late, true); err != nil || n.link(t) != first.Generation {
		t.Errorf("forced rollback: %v, at %s", err, n.link(t))
	}
}

// TestChangesAreExclusive: a second change while one holds the lock is
// refused at once.
func TestChangesAreExclusive(t *testing.T) {
	n := newNode(t)
	unlock, err := lock(n.State)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := Install(n.cfg, n.bundle(t)); err == nil || !strings.Contains(err.Error(), "another `timenodectl provision`") {
		t.Errorf("concurrent install: %v", err)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %04o, want %04o", path, fi.Mode().Perm(), want)
	}
}

func mustReadGen(t *testing.T, state, gen string) map[string][]byte {
	t.Helper()
	f, err := readGen(state, gen)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestInstallKeepsThePinnedCertificate: clients pin the installed
// attestation certificate, so a bundle that leaves it out keeps it, one
// that re-issues it is refused (check and install alike), and --new-pin
// lets the operator replace it on purpose.
func TestInstallKeepsThePinnedCertificate(t *testing.T) {
	n := newNode(t)
	if _, err := Install(n.cfg, n.bundle(t)); err != nil {
		t.Fatal(err)
	}
	pinned := n.issued(t, "")
	reissued := n.AttestationCert(t, "", t0) // same key, new certificate
	cases := []struct {
		name    string
		cert    []byte // nil: left out of the bundle
		newPin  bool
		refused bool
		want    []byte // the installed certificate afterwards
	}{
		{"left out keeps the installed one", nil, false, false, pinned},
		{"the same certificate again", pinned, false, false, pinned},
		{"re-issued without --new-pin", reissued, false, true, pinned},
		{"re-issued with --new-pin", reissued, true, false, reissued},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := n.files(t)
			delete(files, site.AttestationCert)
			if tc.cert != nil {
				files[site.AttestationCert] = tc.cert
			}
			dir := writeBundle(t, files)
			c := n.cfg
			c.NewPin = tc.newPin
			r, err := Check(c, dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := refusedFor(r, site.AttestationCert, "AUNSORM_CALIBRATION_FINGERPRINT"); got != tc.refused {
				t.Fatalf("check: refused %v, want %v; problems %v", got, tc.refused, r.Problems)
			}
			_, err = Install(c, dir)
			var refused *RefusedError
			if errors.As(err, &refused) != tc.refused || (!tc.refused && err != nil) {
				t.Fatalf("install: %v, want refused %v", err, tc.refused)
			}
			got, err := os.ReadFile(filepath.Join(n.State, site.GensDir, n.link(t), site.AttestationCert))
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("installed certificate: %v, or not the one expected", err)
			}
		})
	}
}

// refusedFor reports whether r refuses file with a message containing s.
func refusedFor(r *Report, file, s string) bool {
	for _, p := range r.Problems {
		if p.File == file && strings.Contains(p.Msg, s) {
			return true
		}
	}
	return false
}
