// Package provision validates an operator's provisioning bundle against
// the node it is meant for and installs it, as `timenodectl provision`
// does on the appliance. The layout it writes is package site's: the
// daemon's files become a new generation S/.site/GEN and the link S/site
// is swapped to it in one rename(2); files for root services go to
// RootDir, each replaced atomically.
//
// Every change follows one order so that a crash at any point leaves the
// node usable: a generation is written under a temporary name, fsynced
// and renamed into place before anything points at it, and only the swap
// of S/site makes it current. Leftovers of a crash (a .tmp-* generation,
// the temporary link) are never current and are removed by the next
// change. One change runs at a time (an exclusive flock on S).
//
// Time is an input (Config.Now): every certificate is judged at that
// instant, so the checks are the same in tests and on a node whose
// operator asks "what if" with --now.
package provision

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer/keyfile"
)

// DefaultRuleset is the node's nftables ruleset (image/nftables/timenode.nft
// installed), which a site.nft is checked against.
const DefaultRuleset = "/etc/nftables.conf"

// Names of files in a bundle (or on a provisioning medium) that go to
// RootDir, and the names they get there.
const (
	BundleAuthorizedKeys = "authorized_keys"
	BundleNftables       = "site.nft"
	BundleModules        = "modules.conf"
)

// Config is where the node's state lives and the time checks are made at.
type Config struct {
	State   string    // state directory S; site.DefaultStateDir if empty
	Root    string    // RootDir R; site.DefaultRootDir if empty
	Now     time.Time // the time certificates are checked at; time.Now() if zero
	Ruleset string    // ruleset a site.nft is checked against; DefaultRuleset if empty
	// Nft is the command that runs nft, "-c -f FILE" appended; the nft
	// found in $PATH or /usr/sbin if empty.
	Nft []string
	// LeapSeconds is the image's leap-seconds.list, which the daemon uses
	// when the site material carries none; site.DefaultLeapSeconds if
	// empty. A bundle's list must not expire before it.
	LeapSeconds string
	// NewPin lets a bundle replace the installed attestation certificate
	// with a different one, which changes the fingerprint clients pin.
	NewPin bool

	// step, if set, is called before each step of a change with its
	// name. An error makes the change fail there (an I/O error); a panic
	// stops it as a crash would, without cleaning up. Tests only.
	step func(name string) error
}

func (c Config) withDefaults() Config {
	if c.State == "" {
		c.State = site.DefaultStateDir
	}
	if c.Root == "" {
		c.Root = site.DefaultRootDir
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	if c.Ruleset == "" {
		c.Ruleset = DefaultRuleset
	}
	if c.LeapSeconds == "" {
		c.LeapSeconds = site.DefaultLeapSeconds
	}
	return c
}

// at runs the step hook.
func (c Config) at(name string) error {
	if c.step == nil {
		return nil
	}
	return c.step(name)
}

// Finding is one observation about one file.
type Finding struct {
	// File names the file: as in the bundle ("tls.crt"), or relative to
	// the state directory for the node's own files ("keys/tls.key").
	File string
	Msg  string
}

// String is "FILE: message", or the message alone when it already
// starts with the file's name (parsers that give line numbers).
func (f Finding) String() string {
	if strings.HasPrefix(f.Msg, f.File+":") {
		return f.Msg
	}
	return f.File + ": " + f.Msg
}

// Report is the outcome of checking a bundle (or a generation, or a
// medium) against the node.
type Report struct {
	Dir      string
	Files    []Finding // what each valid file is
	Warnings []Finding // worth knowing, not a reason to refuse
	Problems []Finding // each refuses the bundle
}

func (r *Report) ok(file, format string, args ...any) {
	r.Files = append(r.Files, Finding{file, fmt.Sprintf(format, args...)})
}

func (r *Report) warn(file, format string, args ...any) {
	r.Warnings = append(r.Warnings, Finding{file, fmt.Sprintf(format, args...)})
}

func (r *Report) problem(file, format string, args ...any) {
	r.Problems = append(r.Problems, Finding{file, fmt.Sprintf(format, args...)})
}

// problems adds one problem per error joined in err.
func (r *Report) problems(file string, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			r.problems(file, e)
		}
		return
	}
	r.problem(file, "%v", err)
}

// Err is nil when nothing was refused, else a *RefusedError.
func (r *Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return &RefusedError{Report: r}
}

// RefusedError says a bundle was refused; the Report holds every problem.
type RefusedError struct{ Report *Report }

// Error lists every problem, one per line.
func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s refused (%d problem", e.Report.Dir, len(e.Report.Problems))
	if len(e.Report.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, p := range e.Report.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// Result is what a change did.
type Result struct {
	Report     *Report  // the checks that allowed it, if any
	Generation string   // the generation now current ("" if none)
	Previous   string   // the generation kept for rollback ("" if none)
	Changes    []string // what changed, one line each
	Next       []string // what the operator runs next
	Warnings   []string // trouble after the change took effect
}

// owner returns the uid and gid that own the state directory (the
// daemon's dynamic user on the appliance; S may be a symlink to
// /var/lib/private/timenode, which Stat follows).
func owner(dir string) (uid, gid int, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("%s: no owner information", dir)
	}
	return int(st.Uid), int(st.Gid), nil
}

// keyPolicy is how the node's key files are read: root reads the files
// of the state directory's owner, anyone else only their own.
func keyPolicy(uid int) keyfile.Policy {
	p := keyfile.DefaultPolicy()
	if os.Geteuid() == 0 {
		p.UID = uid
	}
	return p
}

// chown hands a file made by root to uid:gid; as anyone else the file is
// already the caller's and chown is skipped.
func chown(path string, uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, uid, gid)
}

// writeFile creates path (which must not exist) with data, mode perm and
// owner uid:gid, and fsyncs it.
func writeFile(path string, data []byte, perm os.FileMode, uid, gid int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	err = f.Chmod(perm) // the umask may have taken bits away
	if err == nil && os.Geteuid() == 0 {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// lock takes an exclusive, non-blocking flock on the state directory for
// the duration of one change; the kernel releases it if we die.
func lock(state string) (unlock func(), err error) {
	d, err := os.Open(state)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		d.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: another `timenodectl provision` is changing this node; try again when it is done", state)
		}
		return nil, fmt.Errorf("lock %s: %w", state, err)
	}
	return func() { d.Close() }, nil
}

// genName names a generation after the time it was made (UTC, sortable)
// and a random suffix, so two made in one second differ.
func genName(now time.Time) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]), nil
}

// genTime reads the time back out of a generation's name.
func genTime(name string) (time.Time, bool) {
	ts, _, _ := strings.Cut(name, "-")
	t, err := time.Parse("20060102T150405Z", ts)
	return t, err == nil
}

// tmpPrefix marks a generation still being written: never current.
const tmpPrefix = ".tmp-"

// tmpLink is the new link before it is renamed over S/site.
const tmpLink = ".site-link.tmp"

// current returns the name of the current generation, "" if the node is
// not provisioned.
func current(state string) (string, error) {
	dir, err := site.Resolve(state)
	if err != nil {
		if _, lerr := os.Lstat(filepath.Join(state, site.Link)); errors.Is(lerr, fs.ErrNotExist) {
			return "", nil
		}
		return "", err
	}
	return filepath.Base(dir), nil
}

// generations lists the complete generations in S/.site, oldest first
// by name.
func generations(state string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(state, site.GensDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var gens []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			gens = append(gens, e.Name())
		}
	}
	sort.Strings(gens)
	return gens, nil
}

// readGen reads the files of a generation.
func readGen(state, gen string) (map[string][]byte, error) {
	files := map[string][]byte{}
	if gen == "" {
		return files, nil
	}
	dir := filepath.Join(state, site.GensDir, gen)
	for _, name := range siteFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	return files, nil
}
