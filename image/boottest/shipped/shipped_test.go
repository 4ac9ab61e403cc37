//go:build linux

package shipped

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aunsorm/timenode/image/boottest/ppssync"
	"github.com/aunsorm/timenode/netsvc"
	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/client"
)

// siteNft is the site's ruleset additions: the test's veth address
// (client) is the management, application and NTP client segment;
// monitoring is empty, so the metrics port must stay closed.
func siteNft(client string) string {
	return fmt.Sprintf(`flush set inet timenode mgmt_v4
add element inet timenode mgmt_v4 { %[1]s }
flush set inet timenode app_v4
add element inet timenode app_v4 { %[1]s }
flush set inet timenode ntp_clients_v4
add element inet timenode ntp_clients_v4 { %[1]s }
flush set inet timenode monitoring_v4
`, client)
}

const (
	// The board: receiver on the second UART, PPS on the parallel port's
	// ACK line (pps_parport), as a site's modules.conf and site.env say.
	modulesConf = "parport_pc io=0x378 irq=7\npps_parport\n"
	// Under TCG the pulse writer starts its port writes up to several ms
	// late (measured: median 1.1 ms, p90 6 ms, max 16 ms of 116 pulses)
	// and the kernel timestamps the interrupt 70-300 µs after the write:
	// the lock threshold and holdover policy are those of a board with such
	// a PPS, set through the site's settings. The node's own NTS-KE is
	// its NTS witness: no evidence (one witness, its own clock), but the
	// shipped witness path runs: through the image's system roots first,
	// which do not vouch for the site's private server CA, then through
	// the bundle's witness-ca.pem after a reload.
	siteEnv = `NTP_AUTHORITY_ID=time.boottest.example
TIMENODED_OPTS="--serial /dev/ttyS1 --baud 9600 --pps /dev/pps0 --lock-threshold 5ms --max-holdover-bound 50ms --witness-nts localhost:4460"
`
	authority = "time.boottest.example"
)

// shippedFiles maps every file image/build.sh installs from this
// repository (units, drop-ins, udev rules, AppArmor profiles, the ruleset
// and the image's own configuration) to where it lands in the image; each
// must be byte-identical in the running guest: the test boots what ships,
// nothing swapped in.
func shippedFiles(t testing.TB, root string) map[string]string {
	t.Helper()
	files := map[string]string{
		"systemd/ssh.service.d/timenode.conf":                    "/usr/lib/systemd/system/ssh.service.d/timenode.conf",
		"systemd/nftables.service.d/timenode.conf":               "/usr/lib/systemd/system/nftables.service.d/timenode.conf",
		"systemd/systemd-time-wait-sync.service.d/timenode.conf": "/usr/lib/systemd/system/systemd-time-wait-sync.service.d/timenode.conf",
		"systemd/60-timenode.rules":                              "/usr/lib/udev/rules.d/60-timenode.rules",
		"systemd/61-timenode-media.rules":                        "/usr/lib/udev/rules.d/61-timenode-media.rules",
		"apparmor/usr.sbin.timenoded":                            "/etc/apparmor.d/usr.sbin.timenoded",
		"apparmor/timenode-refresh":                              "/etc/apparmor.d/timenode-refresh",
		"image/nftables/timenode.nft":                            "/etc/nftables.conf",
	}
	for _, pat := range []string{"systemd/*.service", "systemd/*.timer"} {
		units, _ := filepath.Glob(filepath.Join(root, pat))
		for _, u := range units {
			files["systemd/"+filepath.Base(u)] = "/usr/lib/systemd/system/" + filepath.Base(u)
		}
	}
	// image/rootfs is copied over the root as it is.
	rootfs := filepath.Join(root, "image/rootfs")
	err := filepath.WalkDir(rootfs, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(rootfs, path)
		files["image/rootfs/"+rel] = "/" + rel
		return nil
	})
	if err != nil || len(files) < 20 {
		t.Fatalf("listing the shipped files: %d found, %v", len(files), err)
	}
	return files
}

// debianDropIns are Debian's units that timenode changes with a drop-in.
var debianDropIns = []string{"ssh.service", "nftables.service", "systemd-time-wait-sync.service"}

func needTools(t testing.TB, tools map[string]string) {
	t.Helper()
	for tool, pkg := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: apt-get install %s", tool, pkg)
		}
	}
}

// TestShippedImage boots the built image as flashed and provisions it the
// documented way, from the host, through the management port.
func TestShippedImage(tt *testing.T) {
	t := withFailureSummary(tt)
	if os.Getenv("TIMENODE_IMAGE_TEST") != "1" {
		t.Skip("boots the built appliance image under qemu TCG for many minutes: run `make image-test`")
	}
	needTools(t, map[string]string{"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
		"ssh": "openssh-client", "scp": "openssh-client", "ssh-keygen": "openssh-client",
		"mkfs.vfat": "dosfstools", "mcopy": "mtools", "chronyd": "chrony"})
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	buildDir := os.Getenv("TIMENODE_IMAGE_DIR")
	if buildDir == "" {
		buildDir = filepath.Join(root, "build/image")
	}
	img := filepath.Join(buildDir, "timenode-amd64.img")
	if _, err := os.Stat(img); err != nil {
		t.Fatalf("%v: run `make image` first", err)
	}
	// Logs stay beside the image for CI to show.
	dir := filepath.Join(buildDir, "boottest-shipped")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	step := func(format string, args ...any) {
		t.Logf("[%4.0fs] %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	// The update bundles (issue 18), made first: a failure here is quick.
	upd := makeBundles(t, root, buildDir, filepath.Join(dir, "update"))
	step("update bundles: %s", bundleSizes(upd))

	// The administrator's key and the provisioning medium.
	key := filepath.Join(dir, "admin")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "boottest admin", "-f", key)
	medium := filepath.Join(dir, "tnprov.img")
	mediumDir := filepath.Join(dir, "medium")
	os.MkdirAll(mediumDir, 0o755)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	p := newNetwork(t)
	for name, body := range map[string][]byte{"authorized_keys": pub, "site.nft": []byte(siteNft(p.client)), "modules.conf": []byte(modulesConf)} {
		if err := os.WriteFile(filepath.Join(mediumDir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "mkfs.vfat", "-n", "TNPROV", "-C", medium, "4096")
	for _, name := range []string{"authorized_keys", "site.nft", "modules.conf"} {
		run(t, "mcopy", "-i", medium, filepath.Join(mediumDir, name), "::"+name)
	}
	// The flashed disk: a copy-on-write layer over the image, kept across
	// the reboot; the firmware's variables likewise.
	disk := filepath.Join(dir, "disk.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", img, disk)
	vars := filepath.Join(dir, "vars.fd")
	if b, err := os.ReadFile(ovmfVars); err != nil {
		t.Fatalf("%v: apt-get install ovmf", err)
	} else if err := os.WriteFile(vars, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// First boot: unprovisioned. The medium lets the administrator in.
	v := boot(t, dir, disk, vars, medium, key, p, 1)
	v.waitSSH(10 * time.Minute)
	step("first boot: administrator logged in over SSH; %s", checkRootVerified(t, v, "a"))
	checkUnitsAsShipped(t, v, root)
	if st := strings.TrimSpace(v.must("systemctl show -P ActiveState timenoded.service")); st == "active" {
		t.Fatalf("timenoded is %s before provisioning", st)
	}
	checkPasswordRefused(t, v)
	if !strings.Contains(v.must("sudo systemctl show -P ConditionResult timenoded.service"), "no") {
		t.Error("timenoded's start was not skipped on the unprovisioned node")
	}

	// The operator takes the CSRs out and answers them.
	now := time.Now()
	op := newOperator(t, now, p.host)
	tlsCSR := v.must("sudo timenodectl provision csr tls")
	attCSR := v.must("sudo timenodectl provision csr attestation")
	bundle1, attDER := op.bundle(t, filepath.Join(dir, "bundle1"), now, tlsCSR, attCSR, "", siteEnv)
	pin := signer.Fingerprint(attDER)
	v.scp("/var/lib/ntp-admin/", bundle1)
	out := v.must("sudo timenodectl provision install /var/lib/ntp-admin/bundle1")
	step("bundle installed: %s", firstLine(out))
	// A bad bundle is refused and changes nothing.
	checkBadBundleRefused(t, v, op, dir, now, tlsCSR, attCSR)

	pps := startPulses(t, v, root, dir, 1)
	v.must("sudo systemctl reload-or-restart timenoded.service")
	step("timenoded started")

	serverCA := pemFile(t, filepath.Join(dir, "server-ca.pem"), op.serverCA.Cert.Raw)
	attCA := pemFile(t, filepath.Join(dir, "attestation-ca.pem"), op.attest.Cert.Raw)
	https := fmt.Sprintf("https://%s:%d", p.host, p.https)
	hc := httpsClient(t, op)
	checkProduction(t, v)
	keys := checkDevices(t, v, pps, hc, https)
	step("production: confined, NMEA from ttyS1, kernel PPS pulses taken, keys %v over mTLS", keys)
	checkMetricsClosed(t, p)

	// Serving: lock, NTP, verified attestations, rotation under load.
	keys = serve(t, v, dir, root, op, p, hc, https, serverCA, attCA, pin, tlsCSR, attCSR, step)
	checkNoDenials(t, v, 1)
	step("AppArmor denials on /metrics: %s", checkDenialMetric(t, v))
	pps.stop()

	// Reboot: the same keys, the daemon back by itself.
	v.ssh("sudo systemctl reboot")
	if err := v.waitExit(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	step("rebooting")
	v = boot(t, dir, disk, vars, medium, key, p, 2)
	v.waitSSH(10 * time.Minute)
	pps = startPulses(t, v, root, dir, 2)
	defer pps.stop()
	checkProduction(t, v)
	if got := checkDevices(t, v, pps, hc, https); strings.Join(got, ",") != strings.Join(keys, ",") {
		t.Errorf("keys after the reboot %v, want %v", got, keys)
	}
	waitServing(t, v, hc, https+"/health", 15*time.Minute)
	step("second boot: timenoded back with keys %v", keys)
	checkNoDenials(t, v, 2)
	pps.stop()

	// A/B updates: refused bundles, v2 committed, v3 rolled back.
	v = checkUpdates(t, v, upd, dir, root, disk, vars, medium, key, p, hc, https, keys, step)
	checkNoDenials(t, v, 6)
	v = checkFactoryReset(t, v, dir, disk, vars, medium, key, p, upd.v2, step)
	checkNoDenials(t, v, 9)

	// Verified root: the updated slot too runs through dm-verity, and a
	// flipped byte in it stops the node.
	step("after the updates: %s", checkRootVerified(t, v, "b"))
	checkFlippedByteRefused(t, v, img, dir, disk, vars, medium, key, p, step)
}

// serve runs the serving phase and returns the keys published after the
// rotation.
func serve(t testing.TB, v *vm, dir, root string, op *operator, p ports, hc *http.Client, https, serverCA, attCA, pin, tlsCSR, attCSR string, step func(string, ...any)) []string {
	t.Helper()
	waitServing(t, v, hc, https+"/health", 15*time.Minute)
	step("serving: /health 200, kernel clock synchronized")
	bound, tight := waitBoundUnder(hc, https, time.Second, boundWait)
	step("published bound: %s", bound)
	state := integrityState(t, hc, https)
	step("GNSS integrity as shipped (monitor): %s", state)
	step("NTS witness through the system roots: %s", checkWitnessRefused(t, v, hc, https))
	if !tight || !strings.HasPrefix(state, "trusted") {
		// Twice under TCG the node published seconds for minutes, or
		// was untrusted on pps/phase_step, while chrony measured it
		// within a millisecond; its own account of the start says why.
		step("the node's start, from its journal:\n%s", startJournal(v))
	}
	whileServing(t, v, hc, https, "chronyd -Q", func(t testing.TB) struct{} { checkNTP(t, v, p); return struct{}{} })
	step("chronyd -Q: stratum 1")
	step("chronyd -Q over NTS (tcp/4460, site server CA, authselectmode require): %s",
		whileServing(t, v, hc, https, "chronyd -Q over NTS", func(t testing.TB) string { return checkNTS(t, v, p, serverCA) }))
	cert, ckey := op.clientFiles(t, dir)
	ctl := filepath.Join(dir, "timenodectl")
	run(t, "go", "build", "-C", root, "-o", ctl, "./cmd/timenodectl")
	whileServing(t, v, hc, https, "timenodectl attestation verify --production", func(t testing.TB) struct{} {
		out := run(t, ctl, "attestation", "verify", https+"/attestation", "--cacert", serverCA, "--cert", cert, "--key", ckey,
			"--production", "--attestation-ca", attCA, "--pin", pin)
		if !strings.Contains(out, "attestation verified") || !strings.Contains(out, authority) {
			t.Fatalf("timenodectl attestation verify --production:\n%s", out)
		}
		return struct{}{}
	})
	step("timenodectl attestation verify --production: verified")
	for _, version := range []string{"draft11", "google"} {
		step("roughtime (%s): %s", version, whileServing(t, v, hc, https, "roughtime "+version,
			func(t testing.TB) string { return checkRoughtime(t, v, hc, https, version) }))
	}

	// Rotation under load: new TLS certificate and a next signing key,
	// then the next key promoted.
	load := startLoad(t, https, serverCA, op, attCA, pin)
	leafBefore := peerLeaf(t, hc, https+"/health")
	keysBefore := keyIDs(t, hc, https+"/keys")
	v.must("sudo timenodectl keys generate --dir /var/lib/timenode/keys --next")
	nextCSR := v.must("sudo timenodectl keys csr --dir /var/lib/timenode/keys --next --cn " + authority)
	bundle2, _ := op.bundle(t, filepath.Join(dir, "bundle2"), time.Now(), tlsCSR, "", nextCSR, siteEnv)
	// The site's private CA for its witnesses, rotated in with the rest.
	pemFile(t, filepath.Join(bundle2, site.WitnessCA), op.serverCA.Cert.Raw)
	v.scp("/var/lib/ntp-admin/", bundle2)
	v.must("sudo timenodectl provision install /var/lib/ntp-admin/bundle2")
	v.must("sudo systemctl reload timenoded.service")
	waitFor(t, 60*time.Second, "the new TLS certificate", func() bool { return !peerLeaf(t, hc, https+"/health").Equal(leafBefore) })
	waitFor(t, 60*time.Second, "the next key published", func() bool { return len(keyIDs(t, hc, https+"/keys")) == len(keysBefore)+1 })
	// Dual publish until every client has followed the endorsement, as the
	// runbook asks before the promote.
	waitForOr(t, 3*time.Minute, "every client following the endorsed next key", func() bool { return load.followed.Load() >= loadClients },
		func() string {
			resp, err := hc.Get(https + "/keys")
			if err != nil {
				return err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("%d clients followed, %d verified, %d failed (first: %v), %d not servable\nclients logged:\n%s\n/keys (first 3 KiB):\n%.3072s",
				load.followed.Load(), load.ok.Load(), load.failed.Load(), load.firstErr(), load.unservable.Load(), load.clientLog(), b)
		})
	v.must("sudo timenodectl provision promote")
	v.must("sudo systemctl reload timenoded.service")
	var keysAfter []string
	waitFor(t, 60*time.Second, "the promoted key first", func() bool {
		keysAfter = keyIDs(t, hc, https+"/keys")
		return len(keysAfter) >= 1 && keysAfter[0] != keysBefore[0]
	})
	time.Sleep(5 * time.Second)
	ok, failed := load.stop()
	// The removed key stays published for twice the max age (60 s), so
	// that what it signed just before still verifies; then it goes.
	waitFor(t, 3*time.Minute, "the promoted key alone", func() bool {
		keysAfter = keyIDs(t, hc, https+"/keys")
		return len(keysAfter) == 1 && keysAfter[0] != keysBefore[0]
	})
	step("reload under load: %d attestations verified, %d failed, %d refused while the clock was not servable, %d requests retried on a fresh connection; keys %v -> %v",
		ok, failed, load.unservable.Load(), load.retries(), keysBefore, keysAfter)
	// A repeat on a fresh connection is what a client library does about
	// a connection that broke (seen once in ~2,900 requests through
	// qemu's user-mode network); a reload that dropped connections would
	// break one per client per reload, 8 here. TestReloadUnderLoad holds
	// the daemon's reload to no broken connection at all, with clients
	// that do not repeat.
	if retries := load.retries(); failed != 0 || ok == 0 || retries > 2 {
		// The node's side of the story: what timenoded logged around the
		// first failure (the guest's journal, in its monotonic time).
		journal, err := v.ssh("sudo journalctl -u timenoded.service -o short-monotonic --no-pager --since=-10min | tail -n 60")
		if err != nil {
			journal = fmt.Sprintf("(journal not read: %v)", err)
		}
		first := "none"
		if failed != 0 {
			first = fmt.Sprintf("%s ago: %v", time.Since(load.firstAt).Round(time.Second), load.firstErr())
		}
		t.Errorf("reload under load: %d verified, %d failed (first: %s), %d repeated on a fresh connection (at most 2 allowed); the clients logged:\n%s\ntimenoded logged:\n%s",
			ok, failed, first, retries, load.clientLog(), journal)
	}
	// The reload handed the witness the bundle's CA: it answers now.
	waitForOr(t, 4*time.Minute, "the NTS witness answering through witness-ca.pem", func() bool {
		w := nodeHealth(t, hc, https).Integrity
		return w != nil && len(w.Witnesses) == 1 && w.Witnesses[0].Up
	}, func() string { return witnessJournal(v) })
	step("NTS witness through the bundle's witness-ca.pem after the reload: answering")
	return keysAfter
}

// checkWitnessRefused: with no witness-ca.pem, the witness's NTS-KE is
// checked against the image's system roots (ca-certificates, read under
// AppArmor), which do not know the site's private server CA: /health
// lists it not answering for its certificate (once it has been asked,
// every 64 s), and the journal says why.
func checkWitnessRefused(t testing.TB, v *vm, hc *http.Client, https string) string {
	t.Helper()
	var w *netsvc.HealthIntegrity
	waitForOr(t, 3*time.Minute, "/health listing localhost:4460 not answering for its certificate", func() bool {
		w = nodeHealth(t, hc, https).Integrity
		return w != nil && len(w.Witnesses) == 1 && w.Witnesses[0].Name == "localhost:4460" && !w.Witnesses[0].Up && w.Witnesses[0].Failure == "certificate"
	}, func() string { return fmt.Sprintf("integrity %+v; journal:\n%s", w, witnessJournal(v)) })
	journal := witnessJournal(v)
	if !strings.Contains(journal, "certificate signed by unknown authority") {
		t.Fatalf("the witness's failure is not the unknown CA:\n%s", journal)
	}
	return "not answering, " + lastLine(journal)
}

// witnessJournal is what timenoded logged about its witnesses this boot.
func witnessJournal(v *vm) string {
	out, _ := v.ssh("sudo journalctl -u timenoded.service -b --no-pager -o cat | grep -E 'witness|NTS witnesses trust' | tail -n 20")
	return strings.TrimSpace(out)
}

// boundWait is how long the serving phase waits for a tight bound. Once
// (CI, 2026-12-05) the bound still read 2.3 s after 10 minutes under TCG;
// the checks passed all the same, and that wait alone was a ninth of
// CI's 90 minutes.
const boundWait = 4 * time.Minute

// waitBoundUnder waits until the node publishes an error bound under
// limit and says how long that took. Right after lock the bound can be
// seconds (seen: 10-14 s while chrony measured under 1 ms; issue 17), and
// NTP clients refuse a root distance that large (chrony's maxdistance is
// 3 s): the NTP and NTS checks judge the serving node they are meant for,
// not its first seconds. If the bound stays above limit the checks run
// anyway and say why they fail.
func waitBoundUnder(hc *http.Client, https string, limit, within time.Duration) (string, bool) {
	start := time.Now()
	first := time.Duration(-1)
	for {
		var h netsvc.Health
		if resp, err := hc.Get(https + "/health"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
		}
		b := time.Duration(h.Clock.ErrorBoundNs)
		if first < 0 && b > 0 {
			first = b
		}
		if b > 0 && b < limit {
			return fmt.Sprintf("%v after %v (first seen %v)", b, time.Since(start).Round(time.Second), first), true
		}
		if time.Since(start) > within {
			return fmt.Sprintf("still %v after %v (first seen %v): the checks below run anyway", b, within, first), false
		}
		time.Sleep(2 * time.Second)
	}
}

// startJournal returns timenoded's journal lines of this boot that say
// how its clock started: steps, state changes, integrity verdicts with
// their evidence, NMEA and pulse lines; at most 80.
func startJournal(v *vm) string {
	out, err := v.ssh("sudo journalctl -b -u timenoded.service -o short-monotonic --no-pager " +
		"-g 'clock stepped|clock state|integrity|PPS check|NMEA|pulse|label' | head -n 80")
	if err != nil {
		return fmt.Sprintf("journalctl: %v\n%s", err, out)
	}
	return out
}

// metricRE reads one sample of the daemon's exposition.
var metricRE = regexp.MustCompile(`(?m)^timenode_pps_pulses_total\{quality="kernel"\} ([0-9]+)$`)

// checkDevices proves the daemon runs on the board's devices and the
// site's material: it reads NMEA from the UART the site named, takes
// kernel PPS pulses from pps_parport (its own metric, read inside the
// guest: the metrics port is closed to this segment), and serves its
// production signing key over mTLS with the site's certificate. It returns
// the published key ids.
func checkDevices(t testing.TB, v *vm, pps *pulses, hc *http.Client, https string) []string {
	t.Helper()
	waitFor(t, 2*time.Minute, "NMEA from /dev/ttyS1 in the journal", func() bool {
		out, _ := v.ssh("sudo journalctl -b -u timenoded --no-pager -g 'receiving NMEA'")
		return strings.Contains(out, "/dev/ttyS1")
	})
	var pulses, last string
	waitForOr(t, 2*time.Minute, "kernel PPS pulses counted by timenoded", func() bool {
		out, _ := v.ssh(`exec 3<>/dev/tcp/127.0.0.1/9090; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3; cat <&3`)
		last = out
		m := metricRE.FindStringSubmatch(out)
		if m == nil || m[1] == "0" {
			return false
		}
		pulses = m[1]
		return true
	}, func() string {
		// Which side lost the pulse: the writer (its log), the kernel
		// (pps0's assert counter) or the daemon (its journal, metrics).
		wlog, _ := os.ReadFile(pps.log)
		guest, _ := v.ssh("cat /sys/class/pps/pps0/assert; systemctl status --no-pager boottest-pps.service; sudo journalctl -b -u timenoded --no-pager -n 40")
		var pps []string
		for _, l := range strings.Split(last, "\n") {
			if strings.Contains(l, "pps") {
				pps = append(pps, l)
			}
		}
		return fmt.Sprintf("ppswriter log (last 2 KiB):\n%s\nguest:\n%s\nPPS metrics:\n%s", tail(string(wlog), 2048), guest, strings.Join(pps, "\n"))
	})
	t.Logf("timenoded has taken %s kernel PPS pulses", pulses)
	var ids []string
	waitFor(t, time.Minute, "/keys over mTLS", func() bool {
		resp, err := hc.Get(https + "/keys")
		if err != nil {
			return false
		}
		resp.Body.Close()
		ids = keyIDs(t, hc, https+"/keys")
		return len(ids) > 0
	})
	for _, id := range ids {
		if strings.HasPrefix(id, "dev-") {
			t.Errorf("key %s is a development key", id)
		}
	}
	return ids
}

// run runs a host command and returns its combined output.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func firstLine(s string) string { l, _, _ := strings.Cut(strings.TrimSpace(s), "\n"); return l }

// checkUnitsAsShipped fails if any unit, profile or rule in the guest
// differs from the repository's, if a drop-in changes one of our units,
// or if one of Debian's units runs without the drop-in we ship for it.
func checkUnitsAsShipped(t testing.TB, v *vm, root string) {
	t.Helper()
	files := shippedFiles(t, root)
	for src, dst := range files {
		want, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(want)
		// sudo: sudoers.d is readable by root only.
		got := strings.Fields(v.must("sudo sha256sum " + dst))
		if len(got) == 0 || got[0] != hex.EncodeToString(sum[:]) {
			t.Errorf("%s in the guest differs from %s", dst, src)
		}
	}
	// Our units run exactly as shipped: no drop-in anywhere changes them.
	for src := range files {
		if !strings.HasPrefix(src, "systemd/") || strings.Count(src, "/") != 1 || !(strings.HasSuffix(src, ".service") || strings.HasSuffix(src, ".timer")) || strings.Contains(src, "@") {
			continue
		}
		unit := filepath.Base(src)
		if frags := strings.TrimSpace(v.must("systemctl show -P DropInPaths " + unit)); frags != "" {
			t.Errorf("%s has drop-ins in the guest: %s", unit, frags)
		}
	}
	// Debian's units that we change carry our drop-in.
	for _, unit := range debianDropIns {
		want := "/usr/lib/systemd/system/" + unit + ".d/timenode.conf"
		if frags := v.must("systemctl show -P DropInPaths " + unit); !strings.Contains(frags, want) {
			t.Errorf("%s in the guest runs without %s (drop-ins: %q)", unit, want, strings.TrimSpace(frags))
		}
	}
}

// checkPasswordRefused: only keys get in.
func checkPasswordRefused(t testing.TB, v *vm) {
	t.Helper()
	c := exec.Command("ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive",
		"-o", "ConnectTimeout=20", "-p", fmt.Sprint(v.ports.ssh), v.admin(), "true")
	out, err := c.CombinedOutput()
	if err == nil {
		t.Fatal("SSH without a key logged in")
	}
	if !strings.Contains(string(out), "Permission denied (publickey)") {
		t.Errorf("SSH without a key: %s; want the server to offer publickey only", out)
	}
	for _, user := range []string{"root"} {
		c := exec.Command("ssh", append(v.sshArgs("-p", fmt.Sprint(v.ports.ssh)), user+"@"+v.ports.host, "true")...)
		if out, err := c.CombinedOutput(); err == nil {
			t.Errorf("SSH as %s with the administrator's key logged in: %s", user, out)
		}
	}
}

// checkBadBundleRefused: a bundle whose server certificate belongs to
// another key is refused by `provision install`, and the site stays.
func checkBadBundleRefused(t testing.TB, v *vm, op *operator, dir string, now time.Time, tlsCSR, attCSR string) {
	t.Helper()
	before := v.must("sudo readlink /var/lib/timenode/site")
	bad, _ := op.bundle(t, filepath.Join(dir, "bundle-bad"), now, tlsCSR, attCSR, "", siteEnv)
	if err := os.WriteFile(filepath.Join(bad, "allow.txt"), []byte("two names on one line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v.scp("/var/lib/ntp-admin/", bad)
	out, err := v.ssh("sudo timenodectl provision install /var/lib/ntp-admin/bundle-bad")
	if err == nil {
		t.Fatalf("a bundle with a bad allow-list was installed:\n%s", out)
	}
	if !strings.Contains(err.Error(), "allow.txt") {
		t.Errorf("the refusal does not name allow.txt: %v", err)
	}
	if after := v.must("sudo readlink /var/lib/timenode/site"); after != before {
		t.Errorf("a refused bundle moved the site from %q to %q", before, after)
	}
}

// pulses is the PPS writer running in the guest for one boot.
type pulses struct {
	cancel context.CancelFunc
	done   chan struct{}
	log    string // the writer's output on the host
}

func (p *pulses) stop() { p.cancel(); <-p.done }

// startPulses copies the PPS writer into the guest and runs it as a
// transient unit (outside sshd's sandbox: it writes /dev/port), with its
// time transfer served from the host's clock over the SSH session. It runs
// at real-time priority, and a pulse it cannot start within 3 ms of its
// second is withheld, as a receiver drops a pulse, rather than sent late.
func startPulses(t testing.TB, v *vm, root, dir string, n int) *pulses {
	t.Helper()
	bin := filepath.Join(dir, "ppswriter")
	if _, err := os.Stat(bin); err != nil {
		cmd := exec.Command("go", "build", "-C", root, "-o", bin, "./image/boottest/ppswriter")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build ppswriter: %v\n%s", err, out)
		}
	}
	v.scp("/var/lib/ntp-admin/", bin)
	waitFor(t, 2*time.Minute, "/dev/pps0 (pps_parport from the site's modules.conf)", func() bool {
		out, _ := v.ssh("cat /sys/class/pps/pps0/name")
		return strings.TrimSpace(out) == "pps_parport"
	})
	logPath := filepath.Join(dir, fmt.Sprintf("ppswriter%d.log", n))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd, in, out, err := v.session(ctx, "sudo systemd-run --quiet --pipe --wait --collect --unit=boottest-pps -p CPUSchedulingPolicy=fifo -p CPUSchedulingPriority=80 /var/lib/ntp-admin/ppswriter --max-late 3ms", logf)
	if err != nil {
		t.Fatal(err)
	}
	p := &pulses{cancel: cancel, done: make(chan struct{}), log: logPath}
	go func() {
		defer close(p.done)
		_ = ppssync.Serve(ctx, out, in, time.Now)
		in.Close()
		_ = cmd.Wait()
		logf.Close()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.stop()
		}
	})
	return p
}

// httpsClient is a service of the site: mTLS with the client certificate,
// the server CA as the only root.
func httpsClient(t testing.TB, op *operator) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(op.serverCA.Cert)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: roots, Certificates: []tls.Certificate{op.client}, ServerName: "localhost"}}}
}

// waitServing waits for /health 200 and the kernel clock synchronized.
func waitServing(t testing.TB, v *vm, hc *http.Client, health string, within time.Duration) {
	t.Helper()
	var last string
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := hc.Get(health)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%s %s", resp.Status, strings.TrimSpace(string(b)))
			if resp.StatusCode == http.StatusOK {
				if out, _ := v.ssh("timedatectl show -p NTPSynchronized --value"); strings.TrimSpace(out) == "yes" {
					return
				}
				last += "; kernel clock not synchronized yet"
			}
		} else {
			last = err.Error()
		}
		time.Sleep(time.Second)
	}
	journal, _ := v.ssh("sudo journalctl -b -u timenoded --no-pager | tail -n 40")
	t.Fatalf("not serving within %v: %s\njournal:\n%s", within, last, journal)
}

// checkProduction: the shipped unit runs --production, confined.
func checkProduction(t testing.TB, v *vm) {
	t.Helper()
	pid := strings.TrimSpace(v.must("systemctl show -P MainPID timenoded.service"))
	cmdline := strings.ReplaceAll(v.must("sudo cat /proc/"+pid+"/cmdline"), "\x00", " ")
	if !strings.Contains(cmdline, "--production") || strings.Contains(cmdline, "--sim") {
		t.Errorf("timenoded runs %q, want --production", cmdline)
	}
	if got := strings.TrimSpace(v.must("sudo cat /proc/" + pid + "/attr/current")); got != "timenoded (enforce)" {
		t.Errorf("timenoded's confinement %q, want \"timenoded (enforce)\"", got)
	}
}

// checkNoDenials: not one AppArmor denial in this boot.
func checkNoDenials(t testing.TB, v *vm, n int) {
	t.Helper()
	out, _ := v.ssh("sudo journalctl -k -b --no-pager | grep 'apparmor=\"DENIED\"' || true")
	if strings.TrimSpace(out) != "" {
		t.Errorf("AppArmor denials in boot %d:\n%s", n, out)
	}
}

// denialSeries matches the denial counter's samples on /metrics.
var denialSeries = regexp.MustCompile(`(?m)^mtls_app_armor_denials_total\{[^}]*\} ([0-9.e+]+)$`)

// checkDenialMetric: the AppArmor denial count reaches Prometheus on the
// appliance as shipped. The enabled timer runs the counter, which writes
// its textfile into /run/timenode-textfile, and timenoded exports it on
// /metrics (read inside the guest: the port is closed to this segment).
// Every sample must be 0, as checkNoDenials found in the journal.
func checkDenialMetric(t testing.TB, v *vm) string {
	t.Helper()
	var last string
	waitForOr(t, 3*time.Minute, "mtls_app_armor_denials_total on timenoded's /metrics", func() bool {
		last, _ = v.ssh(`exec 3<>/dev/tcp/127.0.0.1/9090; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3; grep -E '^(mtls_app_armor|timenode_textfile)' <&3 || true`)
		return len(denialSeries.FindAllString(last, -1)) > 0
	}, func() string {
		out, _ := v.ssh("systemctl status --no-pager timenode-apparmor-denials.timer timenode-apparmor-denials.service; ls -l /run/timenode-textfile")
		return last + "\n" + out
	})
	samples := denialSeries.FindAllStringSubmatch(last, -1)
	for _, m := range samples {
		if m[1] != "0" {
			t.Errorf("denial counter on /metrics: %s", m[0])
		}
	}
	if !strings.Contains(last, `timenode_textfile_scrape_error{file="timenode_apparmor.prom"} 0`) {
		t.Errorf("the denial textfile was not read cleanly:\n%s", last)
	}
	return fmt.Sprintf("%d samples, all 0", len(samples))
}

// chronyStratum matches a data line of chrony's measurements log for the
// source at addr: date, time, source address, leap, stratum.
func chronyStratum(addr string) *regexp.Regexp {
	return regexp.MustCompile(`^\S+ \S+ ` + regexp.QuoteMeta(addr) + `\s+(\S)\s+(\d+) `)
}

// checkNTP: chronyd in query mode (never steering the host) gets the
// node's time at stratum 1.
func checkNTP(t testing.TB, v *vm, p ports) {
	t.Helper()
	if hdr, err := ntpQuery(p.client, p.host, p.ntp); err != nil {
		t.Errorf("one NTP query from the host: %v\n%s", err, ntpDiagnostics(v))
	} else {
		t.Logf("one NTP query from the host: %s", hdr)
	}
	// chronyd drops to its own user before it writes the log, so the
	// directory and every one above it must let that user in: t.TempDir's
	// parent is private to root.
	dir, err := os.MkdirTemp("", "tnchrony")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "chrony.conf")
	// maxdistance: under TCG the node's error bound, which it publishes as
	// root dispersion, has been seen from 1 ms to 9 s (issue 17: the bound
	// after lock is far above the true error); chrony's default of 3 s
	// would reject the source for that alone. This checks that chrony takes
	// the node for a stratum-1 source with no leap alarm; the dispersion
	// each sample carried is logged below.
	body := fmt.Sprintf("server %s port %d iburst maxsamples 4\nmaxdistance 16\nlogdir %s\nlog measurements\n", p.host, p.ntp, dir)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "chronyd", "-Q", "-f", conf, "-t", "30").CombinedOutput()
	log, _ := os.ReadFile(filepath.Join(dir, "measurements.log"))
	if err != nil {
		t.Fatalf("chronyd -Q: %v\n%s\nmeasurements:\n%s\n%s", err, out, log, ntpDiagnostics(v))
	}
	f, err := os.Open(filepath.Join(dir, "measurements.log"))
	if err != nil {
		t.Fatalf("chronyd wrote no measurements: %v\n%s", err, out)
	}
	defer f.Close()
	strata := 0
	line := chronyStratum(p.host)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		strata++
		t.Logf("chrony measured: %s", sc.Text())
		if m[2] != "1" || m[1] != "N" {
			t.Errorf("chrony measured leap %s stratum %s, want N and 1: %s", m[1], m[2], sc.Text())
		}
	}
	if strata == 0 {
		t.Fatalf("no measurement of %s in chrony's log; chronyd said:\n%s", p.host, out)
	}
	t.Logf("chronyd -Q: %s", strings.TrimSpace(string(out)))
}

// ntsWrongBy is chronyd -Q's closing line: the offset it measured.
var ntsWrongBy = regexp.MustCompile(`System clock wrong by (-?[0-9.]+) seconds`)

// checkNTS: chronyd in query mode, as an NTS client that trusts only the
// site's server CA, completes NTS-KE on tcp/4460 with the node's
// provisioned TLS certificate and takes authenticated time on the NTP
// port. authselectmode require makes chronyd drop every unauthenticated
// sample, so a measured offset is an authenticated one. It returns
// chronyd's closing line.
func checkNTS(t testing.TB, v *vm, p ports, serverCA string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tnnts")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dump := filepath.Join(dir, "ntsdump")
	if err := os.Mkdir(dump, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "chrony.conf")
	// maxdistance as in checkNTP: the bound under TCG is loose.
	body := strings.Join([]string{
		fmt.Sprintf("server %s port %d nts ntsport %d iburst maxsamples 4", p.host, p.ntp, p.nts),
		"maxdistance 16", "ntstrustedcerts " + serverCA, "nosystemcert", "authselectmode require",
		"ntsdumpdir " + dump, "pidfile " + filepath.Join(dir, "chronyd.pid"), "logdir " + dir,
		"log measurements", "cmdport 0", "bindcmdaddress /"}, "\n") + "\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "chronyd", "-Q", "-f", conf, "-t", "60", "-u", "root").CombinedOutput()
	log, _ := os.ReadFile(filepath.Join(dir, "measurements.log"))
	m := ntsWrongBy.FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("chronyd -Q with NTS (authselectmode require): %v\n%s\nmeasurements:\n%s\n%s", err, out, log, ntpDiagnostics(v))
	}
	// The host's clock and the node's are independent here (the guest
	// takes simulated GNSS time that follows the host's clock): seconds
	// apart would mean the reply was not the node's time.
	if off, perr := strconv.ParseFloat(string(m[1]), 64); perr != nil || math.Abs(off) > 1 {
		t.Errorf("chronyd measured the node %s s off over NTS, want within 1 s", m[1])
	}
	t.Logf("chronyd -Q over NTS, measurements:\n%s", log)
	return strings.TrimSpace(string(m[0]))
}

// whileServing runs a check that needs a serving node (a client taking
// time or a signature from it) and returns what the check returns. Under
// TCG on a loaded host the guest's kernel PPS can turn lossy for minutes:
// CI runs saw 58 % of a minute's pulses rejected, and a node that cycled
// LOCKED, HOLDOVER, UNSYNCHRONIZED, ACQUIRING every 10-20 s for minutes,
// never locked for more than 9 s; a client then rightly refuses the node.
// So an attempt starts only once the node serves and its journal's last
// clock state is LOCKED, and a failed check is tried again only if the
// journal shows the node left LOCKED before the check ended. A failure
// while it stayed locked throughout fails the test at once, and so does
// running out of serveDeadline.
func whileServing[R any](t testing.TB, v *vm, hc *http.Client, https, what string, check func(testing.TB) R) R {
	t.Helper()
	deadline := time.Now().Add(serveDeadline)
	skipped := 0
	for i := 1; ; {
		waitServing(t, v, hc, https+"/health", max(time.Until(deadline), time.Second))
		before := clockStates(v)
		if len(before) == 0 || !strings.Contains(before[len(before)-1], "to=LOCKED") {
			// It left LOCKED between /health and the journal: the check
			// would judge a node that is not serving.
			skipped++
			if time.Now().After(deadline) {
				t.Fatalf("%s: the node was never LOCKED when an attempt could start, within %v (%d tries)", what, serveDeadline, skipped)
			}
			continue
		}
		ft := &failRecorder{TB: t}
		var r R
		done := make(chan struct{})
		go func() {
			defer close(done)
			r = check(ft)
		}()
		<-done
		if ft.err == nil {
			if i > 1 || skipped > 0 {
				t.Logf("%s: passed at attempt %d (%d more skipped: the node had left LOCKED)", what, i, skipped)
			}
			return r
		}
		after := clockStates(v)
		if after == nil {
			t.Fatalf("%s, attempt %d: %v (and the journal could not be read to tell whether the node stayed LOCKED)", what, i, ft.err)
		}
		if len(after) <= len(before) {
			t.Fatalf("%s, attempt %d: failed while the node stayed LOCKED throughout: %v", what, i, ft.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s, attempt %d: failed, and the node kept leaving LOCKED for %v:\n%s\nthe failure: %v",
				what, i, serveDeadline, strings.Join(after[len(before):], "\n"), ft.err)
		}
		t.Logf("%s, attempt %d: the node left LOCKED while it ran, so it is tried again once the node serves:\n%s\nthe failure: %v",
			what, i, strings.Join(after[len(before):], "\n"), ft.err)
		i++
	}
}

// serveDeadline bounds one check's attempts in whileServing.
const serveDeadline = 10 * time.Minute

// clockStates returns the daemon's "clock state" lines of this boot, in
// order, or nil when the journal could not be read.
func clockStates(v *vm) []string {
	out, err := v.ssh(`sudo journalctl -b -u timenoded --no-pager -o cat -g 'msg="clock state"'`)
	if err != nil && out == "" {
		return nil
	}
	lines := []string{}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "clock state") {
			lines = append(lines, l)
		}
	}
	return lines
}

// failureSummary repeats every failure of the run at its end. CI shows
// only the tail of the log, and a failed check (Errorf) lets the run go on
// for many minutes after it, out of that tail.
type failureSummary struct {
	testing.TB
	start time.Time
	mu    sync.Mutex
	msgs  []string
}

// withFailureSummary wraps t; the summary is logged by its first cleanup,
// so it comes after every other cleanup's failures.
func withFailureSummary(t *testing.T) *failureSummary {
	s := &failureSummary{TB: t, start: time.Now()}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.msgs) > 0 {
			t.Logf("%d failure(s) in this run, repeated here:\n%s", len(s.msgs), strings.Join(s.msgs, "\n"))
		}
	})
	return s
}

// record keeps msg, shortened to its head and tail: a failure's journal
// dump is already in the log where it happened.
func (s *failureSummary) record(msg string) {
	const keep = 1500
	if len(msg) > 2*keep {
		msg = msg[:keep] + "\n[...]\n" + msg[len(msg)-keep:]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, fmt.Sprintf("[%4.0fs] %s", time.Since(s.start).Seconds(), msg))
}

// Errorf records the failure and reports it.
func (s *failureSummary) Errorf(format string, args ...any) {
	s.TB.Helper()
	s.record(fmt.Sprintf(format, args...))
	s.TB.Errorf(format, args...)
}

// Fatalf records the failure and ends the test.
func (s *failureSummary) Fatalf(format string, args ...any) {
	s.TB.Helper()
	s.record(fmt.Sprintf(format, args...))
	s.TB.Fatalf(format, args...)
}

// Error records the failure and reports it.
func (s *failureSummary) Error(args ...any) {
	s.TB.Helper()
	s.record(fmt.Sprint(args...))
	s.TB.Error(args...)
}

// Fatal records the failure and ends the test.
func (s *failureSummary) Fatal(args ...any) {
	s.TB.Helper()
	s.record(fmt.Sprint(args...))
	s.TB.Fatal(args...)
}

// failRecorder runs a check whose failures are kept instead of failing
// the test: Fatalf ends only the check's goroutine.
type failRecorder struct {
	testing.TB
	err error
}

// Errorf keeps the first failure.
func (f *failRecorder) Errorf(format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf(format, args...)
	}
}

// Fatalf keeps the failure and ends the check.
func (f *failRecorder) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

// Error keeps the first failure.
func (f *failRecorder) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }

// Fatal keeps the failure and ends the check.
func (f *failRecorder) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// ntpQuery sends one client-mode NTPv4 request and describes the reply's
// header, so a chronyd failure can be told apart from no answer at all.
func ntpQuery(from, host string, port int) (string, error) {
	// Unconnected, so a reply from any address is seen and named rather
	// than filtered by the kernel: a NAT that answers from the wrong port
	// is then told apart from a reply that never left the guest.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)})
	if err != nil {
		return "", err
	}
	defer c.Close()
	to := &net.UDPAddr{IP: net.ParseIP(host), Port: port}
	req := make([]byte, 48)
	req[0] = 4<<3 | 3 // version 4, client
	binary.BigEndian.PutUint64(req[40:], uint64(time.Now().UnixNano()))
	if err := c.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
		return "", err
	}
	if _, err := c.WriteToUDP(req, to); err != nil {
		return "", err
	}
	b := make([]byte, 1024)
	n, src, err := c.ReadFromUDP(b)
	if err != nil {
		return "", err
	}
	if src.String() != to.String() {
		return "", fmt.Errorf("the reply came from %v, not %v: a client on a connected socket (chrony) never sees it", src, to)
	}
	if n < 48 {
		return "", fmt.Errorf("reply of %d bytes", n)
	}
	short := func(off int) float64 { return float64(binary.BigEndian.Uint32(b[off:])) / 65536 }
	return fmt.Sprintf("leap %d version %d mode %d stratum %d root delay %.6fs root dispersion %.6fs refid %x",
		b[0]>>6, b[0]>>3&7, b[0]&7, b[1], short(4), short(8), b[12:16]), nil
}

// ntpDiagnostics is the guest's side of an NTP failure: its sockets, the
// client set, what the daemon counted and logged.
func ntpDiagnostics(v *vm) string {
	out, _ := v.ssh(`cat /proc/net/udp6 /proc/net/udp; sudo nft list counters table inet timenode; sudo nft list set inet timenode ntp_clients_v4; ` +
		`cat /sys/devices/system/clocksource/clocksource0/current_clocksource; sudo dmesg | grep -iE 'clocksource|tsc' | tail -n 8; ` +
		`exec 3<>/dev/tcp/127.0.0.1/9090; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3; grep -iE '^timenode_[a-z_]*(ntp|lock|bound|state|offset)' <&3; ` +
		`sudo journalctl -b -u timenoded --no-pager | tail -n 30`)
	return "guest:\n" + out
}

// checkMetricsClosed: the monitoring segment is empty, so 9090 answers
// nobody.
func checkMetricsClosed(t testing.TB, p ports) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	if resp, err := c.Get(fmt.Sprintf("http://%s:%d/metrics", p.host, p.metrics)); err == nil {
		resp.Body.Close()
		t.Errorf("metrics answered %s from outside the monitoring segment", resp.Status)
	}
}

// peerLeaf returns the server certificate a fresh connection sees.
func peerLeaf(t testing.TB, hc *http.Client, u string) *x509.Certificate {
	t.Helper()
	tr := hc.Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	resp, err := (&http.Client{Timeout: hc.Timeout, Transport: tr}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0]
}

// nodeHealth reads the node's /health document over mTLS.
func nodeHealth(t testing.TB, hc *http.Client, https string) netsvc.Health {
	t.Helper()
	resp, err := hc.Get(https + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h netsvc.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// checkRoughtime queries the node's Roughtime server from inside the guest
// with the shipped timenodectl, configured with the public key /health
// names, and returns what it printed. The unit's --roughtime, the key
// made at first boot and the daemon's time are what it proves; the
// firewall's udp/2002 is the port matrix test's.
func checkRoughtime(t testing.TB, v *vm, hc *http.Client, https, version string) string {
	t.Helper()
	h := nodeHealth(t, hc, https)
	pub := ""
	for _, svc := range h.Services {
		if svc.Name == "roughtime" && svc.Serving {
			pub = svc.PublicKey
		}
	}
	if pub == "" {
		t.Fatalf("/health names no serving roughtime service: %+v", h.Services)
	}
	out, err := v.ssh("timenodectl roughtime query 127.0.0.1:2002 --pubkey " + pub + " --version " + version + " --timeout 10s")
	if err != nil {
		t.Fatalf("timenodectl roughtime query (%s): %v\n%s", version, err, out)
	}
	return strings.Join(strings.Fields(out), " ")
}

// integrityState reports the integrity judgement /health carries: the
// appliance ships --integrity monitor, so it must be there, not enforced,
// and following GNSS whatever the detectors found; what they found under
// the emulated PPS is logged for the calibration docs/INTEGRITY.md wants.
func integrityState(t testing.TB, hc *http.Client, https string) string {
	t.Helper()
	h := nodeHealth(t, hc, https)
	in := h.Integrity
	if in == nil {
		t.Fatal("/health has no integrity object")
	}
	if in.Enforced || !in.FollowingGNSS {
		t.Errorf("integrity %+v: the appliance ships monitor mode, so it must neither enforce nor stop following GNSS", *in)
	}
	return fmt.Sprintf("%s since %s, enforced %t, reasons %v", in.State, in.Since, in.Enforced, in.Reasons)
}

// keyIDs lists the key ids the node publishes.
func keyIDs(t testing.TB, hc *http.Client, u string) []string {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc signer.KeysDocument
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	keys, err := doc.PublicKeys()
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	waitForOr(t, within, what, cond, nil)
}

// waitForOr is waitFor that, on timeout, also prints what diag collects:
// a failure seen once in CI must say enough to be fixed from its log.
func waitForOr(t testing.TB, within time.Duration, what string, cond func() bool, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(2 * time.Second)
	}
	if diag != nil {
		t.Logf("diagnostics for %q:\n%s", what, diag())
	}
	t.Fatalf("no %s within %v", what, within)
}

// load is a set of clients verifying attestations continuously, as the
// site's services do, with the production trust anchor.
type load struct {
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	ok, failed atomic.Int64
	// unservable counts 503s of a node whose clock is not servable
	// (holdover past policy, lost lock): the node refusing to attest is
	// correct, and under TCG's PPS jitter it happens; it is reported, not
	// counted as a rotation failure.
	unservable atomic.Int64
	followed   atomic.Int64 // clients that followed an endorsed rotation
	clients    []*client.Client
	mu         sync.Mutex
	first      error
	firstAt    time.Time
	log        bytes.Buffer // the clients' own log: rotations followed, keys rejected
}

// Write lets the clients' logger write into l.log under l.mu.
func (l *load) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.log.Write(b)
}

// loadClients is the number of verifying clients during the rotation.
const loadClients = 4

func startLoad(t testing.TB, https, serverCA string, op *operator, attCA, pin string) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	cert, key := op.clientFiles(t, t.TempDir())
	roots := x509.NewCertPool()
	roots.AddCert(op.attest.Cert)
	for i := 0; i < loadClients; i++ {
		c, err := client.New(client.Config{URL: https + "/attestation", Pins: []string{pin}, Roots: roots,
			TLSCAFile: serverCA, TLSCertFile: cert, TLSKeyFile: key, Production: true, MaxAge: 30 * time.Second,
			// Re-read /keys often: the dual publish below lasts until every
			// client has followed the endorsement.
			KeysTTL: 5 * time.Second, Log: slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelWarn})).With("client", i),
			OnFollow: func(string) { l.followed.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		l.clients = append(l.clients, c)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
				_, err := c.Refresh(rctx)
				rcancel()
				switch {
				case ctx.Err() != nil:
				// A 503 while the clock is not servable (the API's
				// "clock_unavailable") is counted apart: under TCG the
				// guest can lose pulses; it is not a rotation failure.
				case err != nil && (strings.Contains(err.Error(), "clock not servable") || strings.Contains(err.Error(), `"clock_unavailable"`)):
					l.unservable.Add(1)
				case err != nil:
					l.failed.Add(1)
					l.mu.Lock()
					if l.first == nil {
						l.first, l.firstAt = err, time.Now()
					}
					l.mu.Unlock()
				default:
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *load) stop() (ok, failed int64) {
	l.cancel()
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load()
}

// retries counts the requests the clients repeated on a fresh
// connection after theirs broke: failures a client library hides, which
// the step reports so that they are seen.
func (l *load) retries() uint64 {
	var n uint64
	for _, c := range l.clients {
		n += c.Retries()
	}
	return n
}

func (l *load) firstErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

// clientLog is what the clients logged, for a failure's message.
func (l *load) clientLog() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tail(l.log.String(), 8192)
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
