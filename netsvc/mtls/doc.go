// Package mtls holds the HTTPS listener's TLS material and policy: the
// server certificate, the client CA bundle and the allow-list of client
// identities. Material is loaded and validated as a whole and swapped
// atomically, so a reload never mutates a tls.Config in use and a bad file
// leaves the old material serving. Client policy is enforced in
// VerifyConnection, which also runs on resumed sessions.
package mtls
