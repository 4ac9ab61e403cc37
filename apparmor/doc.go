// Package apparmor holds the appliance's AppArmor profiles:
// usr.sbin.timenoded for the daemon and timenode-refresh for the clock
// refresh sidecar (attached by timenode-refresh.service). Its tests compile
// each profile with apparmor_parser, the way the image loads them, and audit
// the expanded rules: which capabilities are granted and where a confined
// process may write.
//
// The package has no Go API; it exists so that `go test ./apparmor/` runs
// those checks.
package apparmor
