package keyfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// MaxFileSize bounds a key or seed file; anything larger is not ours.
const MaxFileSize = 64 << 10

// ErrRefused is wrapped by every refusal of a file on policy grounds
// (mode, owner, symlink, type of file).
var ErrRefused = errors.New("keyfile: refused")

// Policy says which files ReadSecret accepts.
type Policy struct {
	// Credentials relaxes the checks for files in a systemd credentials
	// directory: systemd makes them mode 0400 or 0440 and owned by the
	// service user or by root, on a read-only mount only the service can
	// read. Group-read and root ownership are accepted; write or other
	// bits never are.
	Credentials bool
	// UID is the owner a key file must have; -1 means the effective uid.
	UID int
}

// DefaultPolicy is the policy for ordinary key files: owned by the
// effective uid, no group or other permissions at all.
func DefaultPolicy() Policy { return Policy{UID: -1} }

// ReadSecret reads a secret file after checking it: a symlink must
// resolve inside its own directory (as Kubernetes secret volumes do, via
// ..data); the file must be a regular file owned by the expected user with
// no permissions for group or other (group-read allowed for credentials),
// and at most MaxFileSize bytes. The caller wipes the returned bytes.
func ReadSecret(path string, p Policy) ([]byte, error) {
	real, err := resolve(path)
	if err != nil {
		return nil, err
	}
	f, fi, err := openNonblock(path, real, syscall.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := checkFile(path, fi, p); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("keyfile: read %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		clear(b)
		return nil, fmt.Errorf("%w: %s: larger than %d bytes: not a key file", ErrRefused, path, MaxFileSize)
	}
	return b, nil
}

// MaxPublicFileSize bounds a certificate, CA bundle or allow-list file.
const MaxPublicFileSize = 1 << 20

// openNonblock opens real (the file path names) without blocking: a FIFO
// or a device in place of a key or certificate would otherwise hold the
// open until a writer came, hanging a start past SIGTERM or wedging a
// reload. The file is checked with fstat on the opened descriptor, so no
// swap between check and read is possible; anything but a regular file is
// refused. For a regular file O_NONBLOCK changes nothing.
func openNonblock(path, real string, flags int) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|flags, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("keyfile: open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("keyfile: stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s: not a regular file (%v)", ErrRefused, path, fi.Mode().Type())
	}
	return f, fi, nil
}

// ReadRegular reads a file that is not secret (a certificate chain, a CA
// bundle, an allow-list) without blocking on it: symlinks are followed,
// but the file reached must be a regular file of at most
// MaxPublicFileSize bytes. Errors wrap fs.ErrNotExist for a missing file
// and ErrRefused for anything else than a regular file.
func ReadRegular(path string) ([]byte, error) {
	f, _, err := openNonblock(path, path, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPublicFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keyfile: read %s: %w", path, err)
	}
	if len(b) > MaxPublicFileSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrRefused, path, MaxPublicFileSize)
	}
	return b, nil
}

// resolve follows a symlink only when its target stays in the link's own
// directory.
func resolve(path string) (string, error) {
	li, err := os.Lstat(path)
	if err != nil {
		return "", fmt.Errorf("keyfile: %w", err)
	}
	if li.Mode()&os.ModeSymlink == 0 {
		return path, nil
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", fmt.Errorf("keyfile: resolve %s: %w", path, err)
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("keyfile: resolve symlink %s: %w", path, err)
	}
	rel, err := filepath.Rel(dir, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%w: %s: symlink to %s, outside %s: replace it with the file itself", ErrRefused, path, target, dir)
	}
	return target, nil
}

func checkFile(path string, fi os.FileInfo, p Policy) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s: not a regular file (%v)", ErrRefused, path, fi.Mode().Type())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: %s: cannot read owner", ErrRefused, path)
	}
	want := p.UID
	if want < 0 {
		want = os.Geteuid()
	}
	owner := int(st.Uid)
	if owner != want && !(p.Credentials && owner == 0) {
		return fmt.Errorf("%w: %s: owned by uid %d, not by uid %d that runs this process: chown %d %s", ErrRefused, path, owner, want, want, path)
	}
	perm := fi.Mode().Perm()
	switch {
	case perm&0o007 != 0:
		return fmt.Errorf("%w: %s: accessible by other users (mode %04o): chmod 600 %s", ErrRefused, path, perm, path)
	case perm&0o020 != 0 || perm&0o010 != 0:
		return fmt.Errorf("%w: %s: group-writable or executable (mode %04o): chmod 600 %s", ErrRefused, path, perm, path)
	case perm&0o040 != 0 && !p.Credentials:
		return fmt.Errorf("%w: %s: group-readable (mode %04o): chmod 600 %s", ErrRefused, path, perm, path)
	}
	return nil
}

// WriteAtomic writes data to path with mode perm: a temporary file in the
// same directory, fsync, rename over path, fsync of the directory. A
// reader sees the old file or the new one, never a part.
func WriteAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("keyfile: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("keyfile: chmod %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("keyfile: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("keyfile: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keyfile: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("keyfile: rename to %s: %w", path, err)
	}
	return SyncDir(dir)
}
