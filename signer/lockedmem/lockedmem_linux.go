//go:build linux

package lockedmem

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func mapPages(size int) ([]byte, error) {
	page := unix.Getpagesize()
	n := (size + page - 1) / page * page
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

func dontDump(mem []byte) error    { return unix.Madvise(mem, unix.MADV_DONTDUMP) }
func lockPages(mem []byte) error   { return unix.Mlock(mem) }
func unlockPages(mem []byte) error { return unix.Munlock(mem) }
func unmapPages(mem []byte) error  { return unix.Munmap(mem) }

// SetNonDumpable makes the process non-dumpable: no core dumps, and
// /proc/self/mem and ptrace are closed to unprivileged processes of the
// same user. The daemon calls it once at start.
func SetNonDumpable() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("lockedmem: prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return nil
}

// Dumpable reports the process's dumpable flag.
func Dumpable() (bool, error) {
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return false, fmt.Errorf("lockedmem: prctl(PR_GET_DUMPABLE): %w", err)
	}
	return v != 0, nil
}

func pageSize() int { return unix.Getpagesize() }
