package provision

import (
	"fmt"
	"io/fs"
	"strings"
)

// Bootstrap installs the files of a provisioning medium (a TNPROV stick,
// mounted at dir) into RootDir at first boot: authorized_keys (required),
// site.nft and modules.conf (optional), each checked as in a bundle. Any
// problem refuses them all, and RootDir stays as it was. Directories and
// dot files are skipped (what the system that wrote the medium leaves
// there: "System Volume Information", "._authorized_keys"); other unknown
// files are refused like in a bundle, so a misspelt name is not skipped
// silently.
func Bootstrap(c Config, dir string) (*Result, error) {
	c = c.withDefaults()
	r := &Report{Dir: dir}
	known := map[string]bool{}
	for _, f := range rootFiles {
		known[f.Bundle] = true
	}
	skip := func(e fs.DirEntry) bool {
		return e.IsDir() || strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "README")
	}
	files, err := readFiles(dir, known, skip, r)
	if err != nil {
		return nil, err
	}
	if _, ok := files[BundleAuthorizedKeys]; !ok && !hasProblem(r, BundleAuthorizedKeys) {
		r.problem(BundleAuthorizedKeys, "missing: %s (the medium's purpose: without it nobody can log in)", roles[BundleAuthorizedKeys])
	}
	checkRoot(c, files, r)
	res := &Result{Report: r}
	if err := r.Err(); err != nil {
		return res, err
	}
	if err := ensureRootDir(c.Root); err != nil {
		return res, err
	}
	unlock, err := lock(c.Root)
	if err != nil {
		return res, err
	}
	defer unlock()
	res.Changes, err = writeRoot(c, files)
	if err != nil {
		return res, err
	}
	if len(res.Changes) == 0 {
		res.Changes = []string{fmt.Sprintf("%s: already holds these files (nothing to install)", c.Root)}
	}
	res.Next = rootNext(res.Changes)
	return res, nil
}

func hasProblem(r *Report, file string) bool {
	for _, p := range r.Problems {
		if p.File == file {
			return true
		}
	}
	return false
}
