// Package leap reads the IETF/IERS leap-seconds.list (Debian's tzdata ships
// it as /usr/share/zoneinfo/leap-seconds.list) and answers the two questions
// the clock discipline and the published time need: what TAI-UTC is at a
// given UTC instant, and whether a leap second is pending at the end of that
// UTC day (the kernel's STA_INS/STA_DEL, the NTP leap indicator, the
// attestation's leap field).
//
// Parse verifies the file's SHA-1 hash line (#h), which covers the last
// update time (#$), the expiry time (#@) and the two numeric fields of every
// data line, concatenated as written with whitespace and comments removed.
// A file past its expiry is still used: Schedule.Expired and Status.Expired
// report the warning state, since leap seconds announced after the file was
// written are unknown to it. The package is pure: time is always an
// argument, and only Load touches the file system.
package leap
