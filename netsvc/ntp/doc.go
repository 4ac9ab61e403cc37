// Package ntp is the appliance's NTPv4 server (RFC 5905).
//
// It answers client-mode (3) requests of versions 3 and 4 with server-mode
// (4) replies of the request's version, stamped from the disciplined clock
// handed to [NewServer] (the simulated oscillator in simulation mode), never
// from the host clock directly.
//
// # Timestamps
//
// The receive timestamp comes from the kernel (SO_TIMESTAMPNS), which stamps
// packets with CLOCK_REALTIME, the host clock. Once per received batch the
// server reads the host clock and the disciplined clock back to back
// (host, disciplined, host) and takes offset = disciplined - midpoint(host),
// reading again (up to three triples) when the two host readings are far
// apart: the scheduler cut the triple, and the midpoint is off by up to half
// the gap.
// A packet's served receive time is then kernel_rx + offset, which equals
// clk.Now() - (time.Now() - kernel_rx): the delay the packet spent queued in
// the socket is preserved, and the served time is the disciplined clock's.
// The transmit timestamp is read from the disciplined clock for each reply
// immediately before the sendmmsg that carries it, which takes at most
// Config.SendBatch replies: a reply waits after its transmit timestamp only
// for the few sent ahead of it in the same call, and a client cannot tell
// that wait from path asymmetry. An NTS reply's timestamp is sealed in
// when it is built, so it also waits for the rest of its group to be built.
//
// Precision is measured at construction from the disciplined clock's read
// resolution (the smallest step seen between consecutive distinct readings,
// or the cost of one read when that is larger); a non-zero Status.Precision
// overrides it.
//
// # Unsynchronized
//
// While the status says the clock is not synchronized the server still
// answers, but with leap indicator 3 (alarm), stratum 0 on the wire and the
// reference ID "INIT". RFC 5905 section 7.3 maps the internal stratum 16
// (unsynchronized) to 0 in transmitted packets, and a stratum-0 packet
// carries a kiss code in its reference ID. chrony rejects such a reply
// (leap 3 and stratum outside 1..15 fail its packet tests) and ntpdig
// reports it as a kiss-o'-death and sets no time: both clients drop us.
//
// # Safety
//
// Only client-mode requests are answered; control (6), private (7),
// broadcast and symmetric modes are dropped, so the server can never be
// used as an amplifier. Every plain reply is exactly 48 bytes, never longer
// than the request. Requests that carry extension fields or a MAC are checked
// for a well-formed layout and answered with a plain 48-byte reply: nothing
// of the unparsed data is echoed. Per-client rate limiting (a generic cell rate
// algorithm keyed by source address) answers excess requests with a
// kiss-o'-death RATE at most once per KoD interval and drops the rest.
//
// # NTS
//
// With Config.NTS set (package nts provides it), a version 4 request that
// carries an NTS Cookie extension field (RFC 8915) is handed to the
// processor with its parsed extension fields (at most MaxExtFields, else
// the request is dropped). The reply header is the plain reply's (same
// leap, stratum, root dispersion); its transmit time is read before the
// authenticator is sealed, since the authenticator covers it. The
// processor appends the echoed Unique Identifier and the authenticator
// within the request's length, so an NTS reply is never longer than its
// request either. A request that fails authentication gets an NTS NAK:
// a kiss-o'-death NTSN that echoes only the Unique Identifier (dropped
// when there is none). Rate limiting applies before any of this, and an
// NTS client over its rate gets the plain 48-byte KoD RATE.
//
// # Throughput
//
// Serve opens Config.Workers sockets bound to the same address with
// SO_REUSEPORT, each served by one goroutine that receives with recvmmsg
// in batches of Config.Batch and replies with sendmmsg in groups of
// Config.SendBatch (docs/SERVING.md measures the trade), using buffers
// allocated once per worker: the plain hot path does not allocate. NTS
// requests do, in the processor (each request's association keys are
// expanded afresh, since the server keeps no per-client state).
//
// Counters are exposed as plain numbers through [Server.Stats]; per-second
// rates are left to the collector (rate() over the counters).
package ntp
