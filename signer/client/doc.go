// Package client is the Clock Refresh Service of SPEC.md §5 as a library:
// it fetches signed attestations from a timenode over HTTPS, decides which
// of the node's published keys to trust (pinned calibration fingerprints,
// the production CA, endorsed rotations), verifies both signatures, the
// nonce and the age, and keeps the last good attestation for callers. It
// reports StaleAttestation and ClockUnavailable, exposes the dashboards'
// metrics on a registry it is given and a /health document.
package client
