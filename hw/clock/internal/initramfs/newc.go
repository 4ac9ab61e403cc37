package initramfs

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// File mode type bits of the cpio format (the same as st_mode).
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeCharDev = 0o020000
)

// trailerName marks the end of a cpio archive.
const trailerName = "TRAILER!!!"

// Writer writes a newc cpio archive. Entries are written in the order they
// are added; parents must be added before their children. Close writes the
// trailer; it does not close the underlying writer.
type Writer struct {
	w      io.Writer
	ino    uint32
	seen   map[string]bool
	closed bool
	err    error
}

// NewWriter returns a Writer that writes the archive to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, ino: 1, seen: map[string]bool{}}
}

// Dir adds a directory with the permission bits perm (for example 0o755).
func (cw *Writer) Dir(name string, perm uint32) error {
	return cw.entry(name, modeDir|perm&0o7777, 2, 0, 0, nil)
}

// File adds a regular file with the given contents and permission bits.
func (cw *Writer) File(name string, perm uint32, data []byte) error {
	return cw.entry(name, modeRegular|perm&0o7777, 1, 0, 0, data)
}

// CharDev adds a character device node, such as /dev/console (5, 1), which
// the kernel opens as init's standard streams before /init runs.
func (cw *Writer) CharDev(name string, perm, major, minor uint32) error {
	return cw.entry(name, modeCharDev|perm&0o7777, 1, major, minor, nil)
}

// Close writes the trailer entry. Further additions fail.
func (cw *Writer) Close() error {
	if cw.err != nil {
		return cw.err
	}
	if cw.closed {
		return errors.New("initramfs: archive already closed")
	}
	if err := cw.header(trailerName, 0, 0, 1, 0, 0, 0); err != nil {
		return err
	}
	cw.closed = true
	return nil
}

// entry validates the name and writes one header and its data.
func (cw *Writer) entry(name string, mode, nlink, rmajor, rminor uint32, data []byte) error {
	if cw.err != nil {
		return cw.err
	}
	if cw.closed {
		return errors.New("initramfs: archive already closed")
	}
	clean := strings.TrimPrefix(path.Clean("/"+name), "/")
	if clean == "" || clean != strings.TrimPrefix(name, "/") || clean == trailerName {
		return fmt.Errorf("initramfs: add %q: name must be a clean relative or absolute path", name)
	}
	if cw.seen[clean] {
		return fmt.Errorf("initramfs: add %q: duplicate entry", name)
	}
	if dir := path.Dir(clean); dir != "." && !cw.seen[dir] {
		return fmt.Errorf("initramfs: add %q: parent %q not added yet", name, dir)
	}
	if uint64(len(data)) > 0xffffffff {
		return fmt.Errorf("initramfs: add %q: %d bytes is too large for cpio", name, len(data))
	}
	cw.seen[clean] = true
	if err := cw.header(clean, cw.ino, mode, nlink, uint32(len(data)), rmajor, rminor); err != nil {
		return err
	}
	cw.ino++
	if _, err := cw.w.Write(data); err != nil {
		cw.err = fmt.Errorf("initramfs: write %s: %w", clean, err)
		return cw.err
	}
	return cw.pad(len(data))
}

// header writes a 110-byte newc header followed by the NUL-terminated name,
// padded so that the data starts on a 4-byte boundary.
func (cw *Writer) header(name string, ino, mode, nlink, size, rmajor, rminor uint32) error {
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	if _, err := io.WriteString(cw.w, hdr+name+"\x00"); err != nil {
		cw.err = fmt.Errorf("initramfs: write header %s: %w", name, err)
		return cw.err
	}
	return cw.pad(len(hdr) + len(name) + 1)
}

// pad writes the NUL bytes that align n written bytes to 4.
func (cw *Writer) pad(n int) error {
	if rem := n % 4; rem != 0 {
		if _, err := cw.w.Write(make([]byte, 4-rem)); err != nil {
			cw.err = fmt.Errorf("initramfs: write padding: %w", err)
			return cw.err
		}
	}
	return nil
}

// Entry is one member of an archive written by WriteGzip.
type Entry struct {
	Name         string
	Mode         uint32 // permission bits
	Dir          bool   // a directory (Data ignored)
	CharDev      bool   // a character device (Data ignored)
	Major, Minor uint32 // device numbers of a CharDev
	Data         []byte // contents of a regular file
}

// WriteGzip writes entries as a gzip-compressed newc archive to w.
func WriteGzip(w io.Writer, entries []Entry) error {
	zw := gzip.NewWriter(w)
	cw := NewWriter(zw)
	for _, e := range entries {
		var err error
		switch {
		case e.Dir:
			err = cw.Dir(e.Name, e.Mode)
		case e.CharDev:
			err = cw.CharDev(e.Name, e.Mode, e.Major, e.Minor)
		default:
			err = cw.File(e.Name, e.Mode, e.Data)
		}
		if err != nil {
			return err
		}
	}
	if err := cw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("initramfs: gzip: %w", err)
	}
	return nil
}
