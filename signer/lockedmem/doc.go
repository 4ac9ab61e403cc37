// Package lockedmem holds secrets in memory that the kernel keeps out of
// swap and out of core dumps: an anonymous private mapping, mlock(2)ed and
// marked MADV_DONTDUMP, wiped with zeros before it is unmapped. It also
// makes the whole process non-dumpable (prctl PR_SET_DUMPABLE 0), which
// additionally keeps other processes of the same user from attaching with
// ptrace or reading /proc/PID/mem.
//
// Go's garbage collector never moves heap objects, but it does not know
// about these mappings either: only values without Go pointers may be
// placed in them (Place checks this).
package lockedmem
