// Package systemd holds the appliance's systemd units (timenoded.service,
// timenode-firstboot.service, timenode-refresh.service) and its udev rules,
// and the tests that judge them with the tools an administrator would use:
// systemd-analyze security scores them against Debian's chrony.service and
// systemd-analyze verify must find nothing to say about them.
//
// The package has no Go API; it exists so that `go test ./systemd/` runs
// those checks.
package systemd
