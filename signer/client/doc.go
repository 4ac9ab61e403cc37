// Package client is the Clock Refresh Service of SPEC.md §5 as a library:
// it fetches signed attestations from a timenode over HTTPS, decides which
// of the node's published keys to trust (pinned calibration fingerprints,
// the production CA, endorsed rotations), verifies both signatures, the
// nonce and the age, and keeps the last good attestation for callers. It
// reports StaleAttestation and ClockUnavailable, exposes the dashboards'
// metrics on a registry it is given and a /health document.
//
// A request whose connection breaks under it (a reset, a closed kept-alive
// connection, an HTTP/2 GOAWAY) is repeated once on a fresh connection,
// logged and counted (Client.Retries); a timeout, a TLS failure or an
// error answer is not. After a failed refresh, Run reconnects (re-reading
// the TLS files) and retries with a jittered backoff.
package client
