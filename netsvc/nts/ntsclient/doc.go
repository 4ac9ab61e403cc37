// Package ntsclient is a Network Time Security client (RFC 8915): NTS-KE
// over TLS 1.3 (ALPN "ntske/1", the server's certificate verified against
// a configured CA pool or the system roots), then NTPv4 requests protected
// with AEAD_AES_SIV_CMAC_256 (Unique Identifier, NTS Cookie, placeholders
// and NTS Authenticator extension fields).
//
// A Client keeps the keys and cookies of one association. Query spends a
// cookie per request, asks for as many placeholders as it takes to keep
// eight, stores the fresh cookies found in the reply's encrypted fields,
// and redoes NTS-KE when it runs out of cookies or the server answers with
// an NTS NAK (kiss code NTSN) that echoes its Unique Identifier. A reply
// whose authenticator, Unique Identifier or origin timestamp does not
// check out is dropped, as an unauthenticated packet must be, and the
// client keeps waiting for the real one until its deadline.
//
// The offset and round-trip delay are computed from T1..T4 as RFC 5905
// does; T1 and T4 are read from Config.Now, the clock being measured,
// never from the host's wall clock unless that is what Now reads. The
// request's transmit timestamp is random (it is echoed, not interpreted,
// by the server), so the request reveals nothing of the client's clock.
//
// The parsers (ParseKEResponse, VerifyReply) are pure functions apart from
// the I/O, and fuzzed.
package ntsclient
