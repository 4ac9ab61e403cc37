// Package ppssync carries host UTC into a qemu guest over a byte stream,
// NTP-style, so that a guest-side test fixture can act on host time
// without using the guest's own CLOCK_REALTIME (which the daemon under test
// steers).
//
// The guest stamps each request with its raw clock (CLOCK_MONOTONIC_RAW in
// the real writer), the host answers with its UTC receive and transmit
// times, and the guest stamps the answer's arrival on its raw clock. Out of
// N such exchanges the one with the smallest round trip wins: its offset is
// the estimate and half its round trip bounds the error, whatever the
// asymmetry of the path. The result is an [Anchor], which maps raw-clock
// readings to host UTC and back.
//
// The stream is line-oriented text, so it survives an SSH session (or a
// pty) unchanged:
//
//	PPSSYNC/1 REQ <seq> <t1>
//	PPSSYNC/1 RSP <seq> <t1> <t2> <t3>
//
// seq is a decimal request number (uint64), t1 the guest's raw clock in
// nanoseconds (int64, echoed back unchanged), t2 and t3 the host's receive
// and transmit times in nanoseconds since the Unix epoch (int64). A line
// may carry noise before the magic "PPSSYNC/1" and a trailing CR; anything
// else that is not exactly one of these messages is ignored by both sides.
//
// Host side: [Serve]. Guest side: [Estimate] for the simple case, or a
// [Guest] that owns the stream for repeated estimates (resynchronisation)
// and reports the stream's end.
package ppssync
