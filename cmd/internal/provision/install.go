package provision

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer/keyfile"
)

// Install checks the bundle in dir and, if nothing is refused, makes it
// the node's site material: a new generation S/.site/GEN holding the
// daemon's files (0600 in a 0700 directory, owned by the owner of S,
// each fsynced), the bundle's files for root services written into
// RootDir (0644, root's, each replaced by rename), then S/site swapped
// to the new generation. The previous generation is kept for Rollback;
// older ones are deleted. A refused bundle returns a *RefusedError and
// changes nothing.
//
// A crash before the swap leaves the old generation current (and at most
// a .tmp-* directory, or an unused complete generation, that the next
// change removes); the swap itself is one rename(2). Root files replaced
// before a crash stay replaced: each is valid on its own.
func Install(c Config, dir string) (*Result, error) {
	c = c.withDefaults()
	unlock, err := lock(c.State)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r := &Report{Dir: dir}
	files, err := readBundle(dir, r)
	if err != nil {
		return nil, err
	}
	keepPinned(c, files, r)
	keepLeap(c, files, r)
	checkSite(c, files, r)
	checkRoot(c, files, r)
	res := &Result{Report: r}
	if err := r.Err(); err != nil {
		return res, err
	}
	if err := checkLink(c.State); err != nil {
		return res, err
	}
	prev, err := current(c.State)
	if err != nil {
		// A link that resolves nowhere is replaced: install repairs it.
		res.Warnings = append(res.Warnings, fmt.Sprintf("replacing a broken site link: %v", err))
		prev = ""
	}
	old, err := readGen(c.State, prev)
	if err != nil {
		return res, fmt.Errorf("reading the current generation %s: %w", prev, err)
	}
	siteNew := map[string][]byte{}
	for _, name := range siteFiles {
		if b, ok := files[name]; ok {
			siteNew[name] = b
		}
	}
	changes := diff(old, siteNew)
	gen := prev
	if len(changes) > 0 {
		if gen, err = writeGen(c, siteNew); err != nil {
			return res, err
		}
	}
	rootChanges, err := writeRoot(c, files)
	if err != nil {
		if gen != prev {
			removeGen(c.State, gen)
		}
		res.Changes = rootChanges
		return res, err
	}
	res.Generation = gen
	if gen == prev {
		res.Changes = append(res.Changes, fmt.Sprintf("site material: unchanged, generation %s (nothing to install)", prev))
	} else {
		if err := swap(c, gen); err != nil {
			removeGen(c.State, gen)
			res.Generation, res.Changes = prev, rootChanges
			return res, err
		}
		res.Previous = prev
		res.Warnings = append(res.Warnings, prune(c.State, gen, prev)...)
		res.Changes = append(res.Changes, fmt.Sprintf("site material: generation %s is current (previous: %s)", gen, orNone(prev)))
		for _, ch := range changes {
			res.Changes = append(res.Changes, "  "+ch)
		}
		res.Next = append(res.Next, reloadStep(old, siteNew))
	}
	res.Changes = append(res.Changes, rootChanges...)
	res.Next = append(res.Next, rootNext(res.Changes)...)
	return res, nil
}

// reloadStep is how the daemon takes up new site material: a reload
// swaps TLS, allow-list and keys, but settings in site.env are read at
// start only.
func reloadStep(old, cur map[string][]byte) string {
	if len(old) > 0 && !bytes.Equal(old[site.Env], cur[site.Env]) {
		return "systemctl restart timenoded   # site.env changed: settings are read at start"
	}
	return "systemctl reload-or-restart timenoded"
}

// Rollback makes the previous generation current again: the one kept by
// the last Install, Promote or Rollback (so a second rollback undoes the
// first). The generation is checked against the node first, since its
// certificates may have expired or its signing key been promoted away
// since; force swaps anyway.
func Rollback(c Config, force bool) (*Result, error) {
	c = c.withDefaults()
	cur, unlock, err := lockProvisioned(c.State, "roll back")
	if err != nil {
		return nil, err
	}
	defer unlock()
	gens, err := generations(c.State)
	if err != nil {
		return nil, err
	}
	target := ""
	for _, g := range gens {
		if g != cur {
			target = g // the newest other one, if a crash left several
		}
	}
	if target == "" {
		return nil, fmt.Errorf("%s: no previous generation to roll back to (only %s)", filepath.Join(c.State, site.GensDir), cur)
	}
	r := &Report{Dir: filepath.Join(c.State, site.GensDir, target)}
	files, err := readFiles(r.Dir, siteKnown(), func(fs.DirEntry) bool { return false }, r)
	if err != nil {
		return nil, err
	}
	checkSite(c, files, r)
	res := &Result{Report: r}
	if err := r.Err(); err != nil && !force {
		return res, fmt.Errorf("%w\n(the daemon would refuse it; --force switches anyway)", err)
	}
	if err := swap(c, target); err != nil {
		return res, err
	}
	res.Generation, res.Previous = target, cur
	res.Warnings = prune(c.State, target, cur)
	res.Changes = []string{fmt.Sprintf("site material: generation %s is current again (rolled back from %s; rollback again to return)", target, cur)}
	old, err := readGen(c.State, cur)
	if err != nil {
		old = nil
	}
	for _, ch := range diff(old, files) {
		res.Changes = append(res.Changes, "  "+ch)
	}
	res.Next = []string{reloadStep(old, files)}
	return res, nil
}

func siteKnown() map[string]bool {
	known := map[string]bool{}
	for _, n := range siteFiles {
		known[n] = true
	}
	return known
}

// checkLink refuses a state directory whose S/site is not a symlink: the
// swap renames a link over it and must never replace a real directory.
func checkLink(state string) error {
	fi, err := os.Lstat(filepath.Join(state, site.Link))
	if err == nil && fi.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("%s is not a symlink: move it away (the site link is managed by timenodectl provision)", filepath.Join(state, site.Link))
	}
	return nil
}

// writeGen writes files as a new complete generation and returns its
// name. It is not current until swap.
func writeGen(c Config, files map[string][]byte) (string, error) {
	uid, gid, err := owner(c.State)
	if err != nil {
		return "", err
	}
	gens := filepath.Join(c.State, site.GensDir)
	if err := os.Mkdir(gens, 0o700); err == nil {
		if err := chown(gens, uid, gid); err != nil {
			return "", err
		}
		if err := keyfile.SyncDir(c.State); err != nil {
			return "", err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	name, err := genName(c.Now)
	if err != nil {
		return "", err
	}
	tmp := filepath.Join(gens, tmpPrefix+name)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := chown(tmp, uid, gid); err != nil {
		return fail(err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := c.at("write " + n); err != nil {
			return fail(fmt.Errorf("write %s: %w", filepath.Join(tmp, n), err))
		}
		if err := writeFile(filepath.Join(tmp, n), files[n], 0o600, uid, gid); err != nil {
			return fail(err)
		}
	}
	if err := keyfile.SyncDir(tmp); err != nil {
		return fail(err)
	}
	if err := c.at("rename generation"); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, filepath.Join(gens, name)); err != nil {
		return fail(err)
	}
	if err := keyfile.SyncDir(gens); err != nil {
		removeGen(c.State, name)
		return "", err
	}
	return name, nil
}

func removeGen(state, gen string) {
	os.RemoveAll(filepath.Join(state, site.GensDir, gen))
}

// swap points S/site at gen: a new link under a temporary name, renamed
// over the old one (rename(2) replaces it atomically), then S fsynced.
func swap(c Config, gen string) error {
	uid, gid, err := owner(c.State)
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.State, tmpLink)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(filepath.Join(site.GensDir, gen), tmp); err != nil {
		return err
	}
	if err := chown(tmp, uid, gid); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := c.at("swap"); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("swap %s: %w", filepath.Join(c.State, site.Link), err)
	}
	if err := os.Rename(tmp, filepath.Join(c.State, site.Link)); err != nil {
		os.Remove(tmp)
		return err
	}
	return keyfile.SyncDir(c.State)
}

// prune removes every generation but keep, and leftovers of crashed
// changes. Its failures do not undo the change: they are reported.
func prune(state string, keep ...string) []string {
	dir := filepath.Join(state, site.GensDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []string{fmt.Sprintf("pruning old generations: %v", err)}
	}
	var warnings []string
	for _, e := range entries {
		if contains(keep, e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			warnings = append(warnings, fmt.Sprintf("pruning %s: %v", e.Name(), err))
		}
	}
	if err := os.Remove(filepath.Join(state, tmpLink)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		warnings = append(warnings, fmt.Sprintf("removing %s: %v", tmpLink, err))
	}
	return warnings
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x != "" && x == s {
			return true
		}
	}
	return false
}

// diff says, file by file, how to differs from from.
func diff(from, to map[string][]byte) []string {
	var out []string
	for _, n := range siteFiles {
		a, hadA := from[n]
		b, hasB := to[n]
		switch {
		case !hadA && hasB:
			out = append(out, n+": new")
		case hadA && !hasB:
			out = append(out, n+": removed")
		case hadA && !bytes.Equal(a, b):
			out = append(out, n+": changed")
		}
	}
	return out
}

// writeRoot writes the bundle's files for root services that differ
// from RootDir's, each replaced atomically, and says what it changed.
func writeRoot(c Config, files map[string][]byte) ([]string, error) {
	var changes []string
	for _, f := range rootFiles {
		b, ok := files[f.Bundle]
		if !ok {
			continue
		}
		dst := filepath.Join(c.Root, f.Root)
		if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, b) {
			continue
		}
		if err := c.at("write root " + f.Root); err != nil {
			return changes, fmt.Errorf("write %s: %w", dst, err)
		}
		if err := writeRootFile(c.Root, f.Root, b); err != nil {
			return changes, err
		}
		changes = append(changes, fmt.Sprintf("%s: replaced from %s", dst, f.Bundle))
	}
	return changes, nil
}

// writeRootFile replaces dir/name with data (0644, root's) by a temporary
// file, fsync and rename, then fsyncs dir. The temporary name ends in
// .tmp, so the ruleset's include of *.nft never reads a half-written
// file.
func writeRootFile(dir, name string, data []byte) error {
	if err := ensureRootDir(dir); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := writeFile(tmp, data, 0o644, 0, 0); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return keyfile.SyncDir(dir)
}

// ensureRootDir makes RootDir if it is missing, 0755 whatever the umask:
// sshd reads authorized_keys there as the administrator, not as root.
func ensureRootDir(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	return err
}

// rootNext is what the operator runs for the root files that changed.
func rootNext(changes []string) []string {
	var next []string
	for _, ch := range changes {
		switch {
		case strings.Contains(ch, site.Nftables+":"):
			next = append(next, "systemctl reload nftables   # the site's segments")
		case strings.Contains(ch, site.Modules+":"):
			next = append(next, "systemctl restart timenode-pps-modules   # new PPS modules (a reboot unloads old ones)")
		case strings.Contains(ch, site.AuthorizedKeys+":"):
			next = append(next, "ssh in with the new key from a second terminal before closing this session")
		}
	}
	return next
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
