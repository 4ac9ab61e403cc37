// Package initramfs writes Linux initramfs archives: the "newc" cpio format
// (ASCII headers, 4-byte alignment, a TRAILER!!! entry) that the kernel
// unpacks into its root file system before it runs /init, optionally
// gzip-compressed as Debian's kernels expect. It is used by the qemu guest
// test of the kernel clock adapter and writes only what that guest needs:
// directories, regular files and character devices.
package initramfs
