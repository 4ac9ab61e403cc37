#!/bin/bash
# Boot test only: waits for timenoded to answer /health in the guest, then
# writes what the host asserts on to /dev/ttyS1 as "TNBT KEY value" lines,
# ending with "TNBT END". Reports facts; judging them is run.sh's job.
set -u
exec 3>/dev/ttyS1
r() { printf 'TNBT %s\n' "$*" >&3; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# GET /health on the plain-HTTP listener (--listen :5000) with bash's
# /dev/tcp: the image has no HTTP client. Prints the status code.
health_code() {
	local line
	exec 4<>/dev/tcp/127.0.0.1/5000 || return 1
	printf 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&4
	IFS=' ' read -r -t 5 _ line _ <&4 || line=
	exec 4<&- 4>&-
	echo "$line"
}

r "BEGIN uptime=$(uptime_s)"
code=
for _ in $(seq 1 240); do
	if [ "$(systemctl is-active timenoded.service)" = active ]; then
		code=$(health_code 2>/dev/null)
		[ "$code" = 200 ] && break
	fi
	sleep 1
done
r "GUEST_HEALTH code=${code:-none} uptime=$(uptime_s)"

for u in timenoded timenode-firstboot nftables apparmor systemd-networkd timenode-boottest-clock timenode-boottest-provision; do
	r "UNIT $u $(systemctl show -P ActiveState $u.service) result=$(systemctl show -P Result $u.service) exec_status=$(systemctl show -P ExecMainStatus $u.service)"
done
# Provisioning: skipped at boot for want of tls/tls.crt, started by
# timenoded.path once timenode-boottest-provision wrote it.
r "TIMENODED_SKIPPED $(journalctl -b -u timenoded.service --no-pager -o cat -g 'unmet condition' -n 1)"
r "PROVISIONED_AT $(systemctl show -P ExecMainExitTimestampMonotonic timenode-boottest-provision.service) STARTED_AT $(systemctl show -P ActiveEnterTimestampMonotonic timenoded.service) PATH $(systemctl show -P ActiveState timenoded.path)"
pid=$(systemctl show -P MainPID timenoded.service)
r "MAINPID $pid"
if [ "${pid:-0}" != 0 ]; then
	r "CONFINEMENT $(cat /proc/$pid/attr/apparmor/current 2>/dev/null || cat /proc/$pid/attr/current)"
	r "PROC_USER $(stat -c %U:%G /proc/$pid) $(grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/$pid/status | tr -s '\t\n' '  ')"
fi
r "LSM $(cat /sys/kernel/security/lsm)"
grep -E '^timenode' /sys/kernel/security/apparmor/profiles | while read -r l; do r "AAPROFILE $l"; done
nft list tables | while read -r l; do r "NFT_TABLE $l"; done
r "NFT_APP_V4 $(nft list set inet timenode app_v4 | tr -s ' \t\n' ' ')"
r "MOUNT / $(findmnt -no FSTYPE,OPTIONS / | tr -s ' ')"
r "MOUNT /var $(findmnt -no FSTYPE,OPTIONS /var | tr -s ' ')"
r "CLOCK epoch=$(date -u +%s) $(date -u +%FT%TZ)"
r "STATE $(readlink /var/lib/timenode) $(ls /var/lib/timenode/ 2>&1 | tr '\n' ' ')"
r "KEYS $(ls /var/lib/private/timenode/keys 2>&1 | tr '\n' ' ')"
r "SYSTEM $(systemctl is-system-running)"
systemctl list-units --state=failed --no-legend --plain | while read -r l; do r "FAILED $l"; done
r "CMDLINE $(cat /proc/cmdline)"
if [ -r /var/lib/timenode/dev-ca.pem ]; then
	r "DEVCA $(base64 -w0 /var/lib/timenode/dev-ca.pem)"
fi
# Context for a failure, from the journal.
for u in timenoded timenode-firstboot nftables apparmor; do
	journalctl -b -u $u.service --no-pager -o short-monotonic -n 15 | while IFS= read -r l; do r "LOG $u $l"; done
done
journalctl -b -k --no-pager -g 'apparmor="DENIED"' -n 20 | while IFS= read -r l; do r "LOG denied $l"; done
r "END uptime=$(uptime_s)"
