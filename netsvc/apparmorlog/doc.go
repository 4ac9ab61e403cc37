// Package apparmorlog reads AppArmor denials of timenode's profiles from
// kernel and audit logs, classifies them and proposes the profile rules
// that would allow them.
//
// Inputs are the line formats an operator has at hand: /var/log/kern.log
// (rsyslog, "host kernel: [uptime] audit: type=1400 audit(T:N): …"),
// `journalctl -k` and dmesg, and auditd's /var/log/audit/audit.log
// ("type=AVC msg=audit(T:N): …", or "type=APPARMOR_DENIED" on some
// distributions). Only apparmor="DENIED" records count; ALLOWED
// (complain mode), AUDIT and STATUS records are skipped.
//
// Classes: file_read and file_write (grouped by the path's first two
// components), network_bind and network_connect (by address family and
// socket type; socket creation and options are network_other),
// capability (by name), ptrace, and other. Rule proposes the rule in
// AppArmor syntax; values copied from the log are sanitised so that a
// crafted path cannot inject profile text, and paths holding glob or
// variable characters are left to a human.
//
// # Metrics
//
// mtls_app_armor_denials_total{profile,class} is a counter. The chosen
// route is node_exporter's textfile collector: a systemd timer runs
// `timenodectl apparmor denials --textfile
// /var/lib/prometheus/node-exporter/timenode_apparmor.prom
// /var/log/kern.log`, which counts the denials in the log and writes the
// file atomically. The value is the count in the log as read, so log
// rotation looks like a counter reset, which rate() and increase()
// handle. The daemon runs confined and must not read the kernel log, so
// it does not scrape denials itself; Tally is also a prometheus.Collector
// should another process feed it.
package apparmorlog
