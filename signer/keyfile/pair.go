package keyfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A key pair is two files, and a crash, a full disk or a kill between them
// must never leave one without the other: the daemon cannot start on half
// a pair, and a half pair looks "generated" to anything that tests for one
// file. So a pair is written whole into a staging directory next to its
// place, then published by two renames in a fixed order, ML-DSA-65 first
// and Ed25519 last. The Ed25519 file therefore marks a complete pair; every
// other state a crash can leave (a staging directory, an ML-DSA-65 file
// alone, or, from earlier releases that wrote Ed25519 first, an Ed25519
// file alone) is an incomplete pair that was never usable, and Generate
// removes it before it makes a new one.

// GenerateOptions say where and how GeneratePair writes a pair.
type GenerateOptions struct {
	// Prefix goes before both file names ("" or "next-").
	Prefix string
	// Extra is the seed file's contents (see DeriveSeed), or nil.
	Extra []byte
	// Overwrite replaces a complete pair; without it one is refused.
	Overwrite bool
	// UID and GID, when UID > 0, own the files before they are published
	// (root writing into a daemon's directory hands them to the daemon).
	UID, GID int
}

// Recovered lists what GeneratePair removed of an interrupted earlier
// generation, for the caller to log.
type Recovered struct {
	Removed []string
}

// ErrPairExists is wrapped when a complete pair is in place and
// GenerateOptions.Overwrite is not set.
var ErrPairExists = errors.New("key pair exists")

// stagePrefix starts the name of a staging directory.
const stagePrefix = ".keygen-"

// step is called between the stages of a generation; tests use it to
// fail one (a full disk, a dying process) and check what is left.
var step = func(string) error { return nil }

// Generate writes a new key pair with the standard names into dir (created
// 0700 if missing), refusing to replace a complete pair unless overwrite
// is set. extra is the seed file's contents or nil.
func Generate(dir string, rng io.Reader, extra []byte, overwrite bool) error {
	_, err := GeneratePair(dir, rng, GenerateOptions{Extra: extra, Overwrite: overwrite})
	return err
}

// PairState describes the key files with one prefix in a directory.
type PairState int

// The states of a pair on disk.
const (
	PairMissing    PairState = iota // neither file
	PairComplete                    // both files
	PairIncomplete                  // one file only: an interrupted generation
)

// State reports whether dir holds a complete pair with prefix.
func State(dir, prefix string) (PairState, error) {
	ed, err := present(filepath.Join(dir, prefix+Ed25519File))
	if err != nil {
		return PairMissing, err
	}
	ml, err := present(filepath.Join(dir, prefix+MLDSA65File))
	if err != nil {
		return PairMissing, err
	}
	switch {
	case ed && ml:
		return PairComplete, nil
	case ed || ml:
		return PairIncomplete, nil
	}
	return PairMissing, nil
}

func present(path string) (bool, error) {
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("keyfile: %w", err)
	}
	return true, nil
}

// GeneratePair writes a new key pair into dir (created 0700 if missing) as
// one unit: afterwards both files are the new pair, or the directory holds
// what it held before (a failed overwrite may leave no pair, never a
// mixed one). It first removes what an interrupted generation left.
func GeneratePair(dir string, rng io.Reader, o GenerateOptions) (Recovered, error) {
	var rec Recovered
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return rec, fmt.Errorf("keyfile: generate in %s: %w", dir, err)
	}
	edPath := filepath.Join(dir, o.Prefix+Ed25519File)
	mlPath := filepath.Join(dir, o.Prefix+MLDSA65File)
	if err := rec.clean(dir, o.Prefix); err != nil {
		return rec, err
	}
	st, err := State(dir, o.Prefix)
	if err != nil {
		return rec, err
	}
	switch {
	case st == PairComplete && !o.Overwrite:
		return rec, fmt.Errorf("keyfile: generate %s: %w (remove it or overwrite explicitly)", edPath, ErrPairExists)
	case st == PairIncomplete:
		// Half a pair never signed anything: nothing can load it.
		for _, p := range []string{edPath, mlPath} {
			if err := os.Remove(p); err == nil {
				rec.Removed = append(rec.Removed, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return rec, fmt.Errorf("keyfile: remove incomplete pair: %w", err)
			}
		}
	}

	stage, err := os.MkdirTemp(dir, stagePrefix+o.Prefix+"*")
	if err != nil {
		return rec, fmt.Errorf("keyfile: generate in %s: %w", dir, err)
	}
	published, mlPublished, oldRemoved := false, false, false
	defer func() {
		if published {
			return
		}
		os.RemoveAll(stage)
		if mlPublished || oldRemoved {
			// An error (not a crash) once a half pair is in place: take
			// it back rather than leave it for the next run.
			os.Remove(mlPath)
		}
	}()
	for _, alg := range []Alg{MLDSA65, Ed25519} {
		if err := writeStaged(filepath.Join(stage, FileName(alg)), rng, alg, o); err != nil {
			return rec, err
		}
		if err := step("staged " + alg.String()); err != nil {
			return rec, err
		}
	}
	if err := SyncDir(stage); err != nil {
		return rec, err
	}
	if st == PairComplete {
		// The old Ed25519 file goes first, so that no moment has the new
		// ML-DSA-65 key beside the old Ed25519 key.
		if err := os.Remove(edPath); err != nil {
			return rec, fmt.Errorf("keyfile: replace %s: %w", edPath, err)
		}
		oldRemoved = true
		if err := SyncDir(dir); err != nil {
			return rec, err
		}
		if err := step("removed old " + Ed25519.String()); err != nil {
			return rec, err
		}
	}
	if err := os.Rename(filepath.Join(stage, FileName(MLDSA65)), mlPath); err != nil {
		return rec, fmt.Errorf("keyfile: publish %s: %w", mlPath, err)
	}
	mlPublished = true
	if err := SyncDir(dir); err != nil {
		return rec, err
	}
	if err := step("published " + MLDSA65.String()); err != nil {
		return rec, err
	}
	if err := os.Rename(filepath.Join(stage, FileName(Ed25519)), edPath); err != nil {
		return rec, fmt.Errorf("keyfile: publish %s: %w", edPath, err)
	}
	published = true
	if err := SyncDir(dir); err != nil {
		return rec, err
	}
	if err := os.Remove(stage); err != nil {
		return rec, fmt.Errorf("keyfile: remove %s: %w", stage, err)
	}
	return rec, nil
}

// clean removes staging directories and WriteAtomic temporaries of this
// prefix's key files: both are only ever left by a process that died.
func (rec *Recovered) clean(dir, prefix string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		stale := strings.HasPrefix(n, stagePrefix+prefix) && e.IsDir() && (prefix != "" || !strings.HasPrefix(n, stagePrefix+"next-"))
		for _, alg := range []Alg{Ed25519, MLDSA65} {
			stale = stale || (!e.IsDir() && strings.HasPrefix(n, "."+prefix+FileName(alg)+".tmp-"))
		}
		if !stale {
			continue
		}
		p := filepath.Join(dir, n)
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("keyfile: remove leftover %s: %w", p, err)
		}
		rec.Removed = append(rec.Removed, p)
	}
	return nil
}

// writeStaged writes one new key, synced, into the staging directory.
func writeStaged(path string, rng io.Reader, alg Alg, o GenerateOptions) error {
	seed, err := DeriveSeed(rng, o.Extra, alg)
	if err != nil {
		return err
	}
	pemBytes, err := MarshalPEM(alg, seed)
	clear(seed)
	if err != nil {
		return err
	}
	defer clear(pemBytes)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keyfile: write %s: %w", path, err)
	}
	_, err = f.Write(pemBytes)
	if err == nil && o.UID > 0 {
		err = f.Chown(o.UID, o.GID)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("keyfile: write %s: %w", path, err)
	}
	return nil
}

// SyncDir makes a directory's entries (new names, renames) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keyfile: open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keyfile: fsync %s: %w", dir, err)
	}
	return nil
}

// ErrKeyExists is wrapped when GenerateKeyFile finds its file in place
// and GenerateOptions.Overwrite is not set.
var ErrKeyExists = errors.New("key file exists")

// GenerateKeyFile writes one new alg key (a key that stands alone, such as
// the Roughtime long-term key) to path, mode 0600: synced in a temporary
// file of the same directory and renamed into place, so the file is whole
// or absent. o.Prefix is ignored.
func GenerateKeyFile(path string, alg Alg, rng io.Reader, o GenerateOptions) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keyfile: generate in %s: %w", dir, err)
	}
	if ok, err := present(path); err != nil {
		return err
	} else if ok && !o.Overwrite {
		return fmt.Errorf("keyfile: generate %s: %w", path, ErrKeyExists)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp-"+strconv.Itoa(os.Getpid()))
	os.Remove(tmp) // a leftover of a dead process with this pid
	if err := writeStaged(tmp, rng, alg, o); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keyfile: publish %s: %w", path, err)
	}
	return SyncDir(dir)
}
