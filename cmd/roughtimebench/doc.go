// Command roughtimebench is the Roughtime server benchmark behind `make
// bench-roughtime` (issue 19): a load generator on loopback drives, in
// alternating rounds of one run, our server with one signature per reply
// (BatchSize 1), our server batched (-batch, 64 by default) and
// Cloudflare's testserver (unbatched: one Ed25519 signature per request),
// and prints for each replies per second, the server's CPU time per second
// (utime+stime from /proc/PID/stat, read before and after each round),
// replies per server CPU-second, the generator's own CPU, median and 99th
// percentile round trip, and the ratios to the testserver.
//
// Every server runs in a process of its own, pinned to one CPU
// (-server-cpu), and the generator's thread to another (-load-cpu), so
// that no server borrows the generator's core; replies per server
// CPU-second is the figure to compare (see docs/SERVING.md, "Roughtime
// performance"). Our server is this binary re-executed with
// ROUGHTIMEBENCH_SERVE set, serving the host clock reported synchronized
// with a fixed 1 ms error bound. The testserver is built from
// -testserver-src (../shared/interop/roughtime, Cloudflare's code, only
// built and run) into a temporary directory unless -testserver names a
// binary; when it cannot be had its rows are left out with the reason
// printed. Both children die with the bench (Pdeathsig), on SIGINT and
// SIGTERM, and at its end; temporary directories are removed.
//
// The generator is one OS thread with one UDP socket, moving requests
// -mmsg at a time with sendmmsg and recvmmsg, with -inflight requests
// outstanding. A request's slot is carried in its source address: slot i
// sends from 127.s.i/256.i%256 (IP_PKTINFO), s counting the slot's
// resends, and the reply's destination address (IP_PKTINFO again) names
// the request it answers without parsing it. That keeps the generator at
// a few system calls per batch rather than two per request, which matters
// when our batched server answers faster than one signature per reply
// allows, and matching by address works for Google-Roughtime replies,
// which carry no NONC. Round trips run from just before the send to the
// kernel's receive timestamp (SO_TIMESTAMPNS).
//
// Requests are 1024 bytes, padded as both protocols require, each with a
// fresh random nonce (ChaCha8 seeded from crypto/rand), in the versions of
// -versions taken in turn (draft 11 with SRV naming the long-term key, and
// Google-Roughtime). A reply larger than its request is a failure; every
// -verify-every-th reply is fully verified with roughtime.VerifyReply
// (delegation and response signatures up to the long-term key, the
// nonce's Merkle path to the signed ROOT). Any failure, in warm-up too,
// is printed and makes the bench exit 1.
package main
