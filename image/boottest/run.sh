#!/usr/bin/env bash
# image/boottest/run.sh [BUILD_DIR]: the appliance boot test (`make image-test`).
#
# Needs the tree of `make image` in BUILD_DIR (default build/image). Makes a
# boot-test disk from it (image/build.sh assemble: the same root, state and
# ESP plus image/boottest/overlay and the static hw/clock/qemutest test
# binary), boots it under qemu-system-x86_64 with TCG (no KVM) with the
# image's own kernel and initrd, and asserts from outside:
#   - /health answers 200 through a loopback port forward to the guest's
#     5443, first with -k (timing), then verified against the development CA
#     the guest copies out on its results port;
#   - the forward to the metrics port (9090, monitoring segment only) gets no
#     answer: the nftables ruleset really filters;
#   - on the results port (ttyS1): timenoded active under systemd, its
#     process confined by the "timenoded" AppArmor profile in enforce mode,
#     both timenode profiles loaded in enforce mode, table inet timenode
#     loaded, / read-only and /var (state) read-write, and the kernel clock
#     adapter's steering check from hw/clock/qemutest reporting PASS.
# Reports boot-to-healthy time. qemu is killed on exit whatever happens.
# Host packages: qemu-system-x86, curl, e2fsprogs, fdisk, dosfstools, mtools; Go.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=${1:-$repo/build/image}
[ -d "$BUILD" ] && BUILD=$(cd "$BUILD" && pwd) # absolute: later steps change directory
TIMEOUT=${BOOTTEST_TIMEOUT:-900}   # seconds from qemu start to the guest's END line
t0=$(date +%s)

fail() { echo "image-test: FAIL: $*" >&2; exit 1; }
log() { echo "image-test: [$(( $(date +%s) - t0 ))s] $*"; }
for t in qemu-system-x86_64 curl go base64 mkfs.ext4 sfdisk mkfs.vfat mcopy; do
	command -v "$t" >/dev/null 2>&1 || fail "$t not found (apt-get install qemu-system-x86 curl e2fsprogs fdisk dosfstools mtools; Go on PATH)"
done
for f in vmlinuz initrd.img cmdline partuuids tree/root; do
	[ -e "$BUILD/$f" ] || fail "$BUILD/$f missing: run \`make image\` first"
done

W=$BUILD/boottest
rm -rf "$W"
mkdir -p "$W"
cp -a "$here/overlay" "$W/overlay"
cp -a "$here/overlay.sh" "$W/overlay.sh"

# The clock adapter's guest test, static, as hw/clock/qemutest builds it.
bin=$W/overlay/root/usr/lib/timenode-boottest/clock-qemutest.test
(cd "${TIMENODE_SRC:-$repo}" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go test -c -o "$bin" ./hw/clock/qemutest) ||
	fail "go test -c ./hw/clock/qemutest"
if ! head -c4 "$bin" | grep -q ELF || grep -q /lib64/ld-linux "$bin"; then
	fail "$bin is not a static ELF binary"
fi

log "assembling the boot-test disk"
"$repo/image/build.sh" assemble "$BUILD" "$W/overlay" "$W/disk.img" >"$W/assemble.log" 2>&1 ||
	{ cat "$W/assemble.log" >&2; fail "image/build.sh assemble"; }

# Two free loopback ports: HTTPS (5443) and metrics (9090, must stay blocked).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
	local p
	for _ in $(seq 1 50); do
		p=$(( 20000 + RANDOM % 20000 ))
		if port_free "$p" && [ "$p" != "${1:-}" ]; then echo "$p"; return 0; fi
	done
	return 1
}
HTTPS_PORT=$(pick_port) || fail "no free port"
METRICS_PORT=$(pick_port "$HTTPS_PORT") || fail "no free port"

cmdline="$(cat "$BUILD/cmdline") timenode.clock_guest=1 clocksource=hpet"
console=$W/console.log
results=$W/results.log
: >"$console"; : >"$results"
qpid=
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill "$qpid" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qpid" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$qpid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "booting (TCG) with /health on 127.0.0.1:$HTTPS_PORT, metrics forward on 127.0.0.1:$METRICS_PORT"
qstart=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -machine q35 -cpu max -smp 2 -m 1024 \
	-kernel "$BUILD/vmlinuz" -initrd "$BUILD/initrd.img" -append "$cmdline" \
	-drive file="$W/disk.img",format=raw,if=virtio,snapshot=on \
	-netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$HTTPS_PORT-:5443,hostfwd=tcp:127.0.0.1:$METRICS_PORT-:9090" \
	-device virtio-net-pci,netdev=n0 \
	-serial "file:$console" -serial "file:$results" \
	-display none -monitor none -no-reboot >"$W/qemu.log" 2>&1 &
qpid=$!

elapsed() { awk -v a="$qstart" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
dump() {
	echo "---- console (last 60 lines) ----" >&2; tail -n 60 "$console" | tr -d '\r' >&2
	echo "---- results ----" >&2; tr -d '\r' <"$results" >&2
	echo "---- qemu ----" >&2; cat "$W/qemu.log" >&2
}

# GET /health without a client certificate is open only to the mesh gateway.
MESH='X-Aunsorm-Mesh: gateway'
healthy_at=
while :; do
	if ! kill -0 "$qpid" 2>/dev/null; then dump; fail "qemu exited before the guest reported (after $(elapsed) s)"; fi
	if [ -z "$healthy_at" ]; then
		code=$(curl -sSk -o /dev/null -w '%{http_code}' --max-time 15 -H "$MESH" \
			"https://127.0.0.1:$HTTPS_PORT/health" 2>"$W/curl-poll.err" || true)
		if [ "$code" = 200 ]; then healthy_at=$(elapsed); log "/health 200 through the port forward, $healthy_at s after qemu start"; fi
	fi
	if grep -q '^TNBT END' "$results"; then break; fi
	if [ "$(elapsed | cut -d. -f1)" -ge "$TIMEOUT" ]; then dump; fail "no TNBT END on the results port within $TIMEOUT s"; fi
	sleep 2
done
reported_at=$(elapsed)
log "guest report complete $reported_at s after qemu start"
res=$(tr -d '\r' <"$results")

# Assertions. Each failure names what was expected and shows what was seen.
errors=()
check() { # check DESCRIPTION EXTENDED-REGEX: a results line must match
	if ! grep -Eq -- "$2" <<<"$res"; then
		errors+=("$1: no line matching /$2/; saw: $(grep -E -- "^(TNBT )?${3:-XX}" <<<"$res" | head -n 3 | tr '\n' '|' || true)")
	fi
}
check "kernel clock adapter steering check (hw/clock/qemutest)" '^TIMENODE_QEMU_CLOCK_RESULT=PASS$' TIMENODE_QEMU_CLOCK_RESULT
check "timenoded active under systemd" '^TNBT UNIT timenoded active ' 'TNBT UNIT timenoded'
check "timenoded process confined in enforce mode" '^TNBT CONFINEMENT timenoded \(enforce\)$' 'TNBT CONFINEMENT'
check "AppArmor is the active LSM" '^TNBT LSM .*apparmor' 'TNBT LSM'
check "timenoded profile loaded, enforce" '^TNBT AAPROFILE timenoded \(enforce\)$' 'TNBT AAPROFILE'
check "timenode-refresh profile loaded, enforce" '^TNBT AAPROFILE timenode-refresh \(enforce\)$' 'TNBT AAPROFILE'
check "nftables ruleset active" '^TNBT NFT_TABLE table inet timenode$' 'TNBT NFT_TABLE'
check "nftables.service active" '^TNBT UNIT nftables active ' 'TNBT UNIT nftables'
check "root file system read-only" '^TNBT MOUNT / ext4 ro[,$]' 'TNBT MOUNT /'
check "state partition read-write on /var" '^TNBT MOUNT /var ext4 rw[,$]' 'TNBT MOUNT /var'
check "guest sees /health 200 on its own listener" '^TNBT GUEST_HEALTH code=200 ' 'TNBT GUEST_HEALTH'
check "timenoded skipped at boot until provisioned" '^TNBT TIMENODED_SKIPPED .*ConditionPathExists=/var/lib/timenode/tls/tls.crt' 'TNBT TIMENODED_SKIPPED'
prov=$(sed -n 's/^TNBT PROVISIONED_AT \([0-9]*\) STARTED_AT \([0-9]*\) .*/\1 \2/p' <<<"$res")
read -r prov_at started_at <<<"${prov:-0 0}"
if [ "${prov_at:-0}" -le 0 ] || [ "${started_at:-0}" -le "${prov_at:-0}" ]; then
	errors+=("timenoded did not start after provisioning through timenoded.path: $(grep '^TNBT PROVISIONED_AT' <<<"$res" || echo 'no PROVISIONED_AT line')")
fi
[ -n "$healthy_at" ] || errors+=("/health never answered 200 through 127.0.0.1:$HTTPS_PORT (with -k); last: HTTP $code $(cat "$W/curl-poll.err")")
# The clock check must leave the guest on real time (the dev certificates and
# the daemon's view of time depend on it).
gepoch=$(sed -n 's/^TNBT CLOCK epoch=\([0-9]*\) .*/\1/p' <<<"$res")
if [ -z "$gepoch" ] || [ $(( $(date +%s) - gepoch )) -gt 600 ] || [ $(( gepoch - $(date +%s) )) -gt 60 ]; then
	errors+=("guest clock at report time ${gepoch:-unknown} is not within 10 min of the host's $(date +%s)")
fi

# /health again, verified against the development CA from the guest.
ca=$(sed -n 's/^TNBT DEVCA //p' <<<"$res" | tail -n 1)
if [ -z "$ca" ]; then
	errors+=("no TNBT DEVCA line: the guest could not read /var/lib/timenode/dev-ca.pem")
else
	base64 -d <<<"$ca" >"$W/dev-ca.pem" || errors+=("TNBT DEVCA is not base64")
	code=$(curl -sS -o "$W/health.json" -w '%{http_code}' --max-time 20 -H "$MESH" --cacert "$W/dev-ca.pem" \
		"https://localhost:$HTTPS_PORT/health" 2>"$W/curl-cacert.err" || true)
	[ "$code" = 200 ] || errors+=("/health with --cacert dev-ca.pem: HTTP $code ($(cat "$W/curl-cacert.err"))")
fi
# The metrics port is for the monitoring segment only; 10.0.2.2 is not in it.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 8 "http://127.0.0.1:$METRICS_PORT/metrics" || true)
[ "$code" != 200 ] || errors+=("metrics (9090) answered through the forward from 10.0.2.2: the firewall does not filter")

guest_health=$(sed -n 's/^TNBT GUEST_HEALTH code=[0-9a-z]* uptime=//p' <<<"$res")
{
	echo "boot_to_healthy_host_seconds=${healthy_at:-never}"
	echo "guest_uptime_at_healthy_seconds=${guest_health:-unknown}"
	echo "guest_report_seconds=$reported_at"
	echo "total_seconds=$(( $(date +%s) - t0 ))"
	grep -E '^TNBT (UNIT|SYSTEM|FAILED|KEYS|PROC_USER|MOUNT)' <<<"$res" || true
} >"$W/summary.txt"

if [ ${#errors[@]} -gt 0 ]; then
	dump
	printf 'image-test: FAIL: %s\n' "${errors[@]}" >&2
	cat "$W/summary.txt" >&2
	exit 1
fi
log "PASS"
cat "$W/summary.txt"
