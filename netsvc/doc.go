// Package netsvc serves the appliance over the network: the HTTPS API
// (/attestation, /health, /keys) on 5443, the same API on a plain HTTP
// listener when configured (--listen), and Prometheus metrics on 9090. It
// reads the timing status and the signer; it never touches the clock's
// discipline. Subpackages hold the NTP server and the TLS material.
package netsvc
