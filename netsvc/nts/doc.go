// Package nts serves Network Time Security (RFC 8915) for the appliance's
// NTP server: the NTS-KE server (TLS 1.3, ALPN "ntske/1", TCP port 4460
// by default) that hands out keys and cookies, and the Processor that the
// NTP server (package ntp, through ntp.Config.NTS) calls to authenticate
// NTS requests and seal their replies.
//
// Only NTPv4 with AEAD_AES_SIV_CMAC_256 (AEAD id 15, package siv) is
// offered. The C2S and S2C keys come from the TLS exporter; the server
// keeps no per-client state: each cookie carries both keys, sealed with
// AES-SIV under a server master key named by a 4-byte key id in the
// cookie. The master key rotates when it is Config.RotateEvery old and on
// Rotate (the daemon calls it on reload); the last Config.KeepKeys keys
// are accepted, each for (KeepKeys-1) * RotateEvery after it was retired.
// With Config.KeyFile the keys are kept in a mode 0600 file, written
// atomically on every rotation and loaded at start, so a restart does not
// invalidate the clients' cookies; without it they live in memory only
// and after a restart clients get NTS NAKs and run NTS-KE again.
//
// An NTS request whose cookie or authenticator does not check out gets an
// NTS NAK (kiss code NTSN, Unique Identifier echoed, unauthenticated). No
// reply is longer than its request: one fresh cookie per cookie and
// placeholder received, as many as fit.
package nts
