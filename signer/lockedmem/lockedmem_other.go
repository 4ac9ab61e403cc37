//go:build !linux

package lockedmem

import "errors"

var errUnsupported = errors.New("not supported on this platform")

func mapPages(size int) ([]byte, error) { return make([]byte, size), nil }
func dontDump([]byte) error             { return nil }
func lockPages([]byte) error            { return errUnsupported }
func unlockPages([]byte) error          { return nil }
func unmapPages([]byte) error           { return nil }

// SetNonDumpable is only implemented on Linux.
func SetNonDumpable() error { return errUnsupported }

// Dumpable is only implemented on Linux.
func Dumpable() (bool, error) { return true, errUnsupported }

func pageSize() int { return 4096 }
