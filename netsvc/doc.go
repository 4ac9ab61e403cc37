// Package netsvc serves the appliance over the network: the HTTPS API
// (/attestation, /health, /keys) on 5443, a plain HTTP listener when
// configured (--listen) that serves only /health and the cached snapshot
// (plain.go), and Prometheus metrics on 9090. Every listener admits
// connections through the same policy (limit.go, admit.go): per-source
// and total limits, short timeouts and few HTTP/2 streams for clients
// without a verified certificate, and a share of the slots that only
// certified clients can use. It reads the timing status and the signer;
// it never touches the clock's discipline. Subpackages hold the NTP
// server and the TLS material.
package netsvc
