// Package ppsabi holds the Linux PPS ABI that package pps relies on: the mode
// bits of <linux/pps.h> (which golang.org/x/sys/unix does not define) and a
// Layout of the ioctl numbers, struct sizes and field offsets as Go sees them
// through the unix package.
//
// Package cabi (a separate package, so that only tests need cgo) reports the
// same figures as the C compiler computes them from the installed
// <linux/pps.h> (Debian package linux-libc-dev), and its tests compare the
// two on the architecture they run on.
//
// # arm64
//
// The appliance may run on an arm64 single-board computer, where the cgo test
// cannot run from an amd64 development machine. The Go side is nevertheless
// the same there, for two reasons that the pure-Go tests in this package check
// on whatever architecture runs them:
//
//   - amd64 and arm64 both use the kernel's generic ioctl encoding
//     (asm-generic/ioctl.h: 2 direction bits at 30, 14 size bits at 16, type
//     at 8, number at 0, with _IOC_WRITE=1 and _IOC_READ=2). Only mips, powerpc,
//     sparc and alpha differ. <linux/pps.h> declares its ioctls with a pointer
//     type (`_IOR('p', 0xa1, struct pps_kparams *)`), so the size field is the
//     size of a pointer, 8 on both, which is why PPS_GETPARAMS is 0x800870a1
//     rather than encoding the size of struct pps_kparams.
//   - Both are LP64 with the same alignment rules: __s64 aligned to 8, __s32 and
//     __u32 to 4. struct pps_ktime is 16 bytes with no padding; struct
//     pps_kinfo is two __u32 (8 bytes), two pps_ktime (32 bytes) and an int,
//     padded to 48 bytes so that an array of it keeps sec aligned; struct
//     pps_fdata is 64 bytes and struct pps_kparams 40. On 32-bit arm the
//     kinfo padding disappears and pointers are 4 bytes, which x/sys models in
//     its own per-architecture files; package pps only uses those types.
package ppsabi
