package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/roughtime"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(envServe); spec != "" {
		os.Exit(serveMain(spec))
	}
	os.Exit(m.Run())
}

// interopSrc is Cloudflare's Roughtime from this folder, as in
// netsvc/roughtime's interop test.
const interopSrc = "../../../shared/interop/roughtime"

// needInterop skips without the interop folder, except under CI=true,
// where a missing peer must not pass silently.
func needInterop(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(interopSrc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cmd", "testserver")); err != nil {
		msg := "interop peer missing: " + dir + " (Cloudflare Roughtime, see shared/interop/README.md): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// rowRE matches a result row: server, replies/s, CPU s/s, replies/CPU-s,
// gen CPU, p50, p99, lost, stray, verified, bad.
var rowRE = regexp.MustCompile(`(?m)^(timenode-b\d+|testserver)\s+(\d+)\s+([0-9.]+)\s+(\d+)\s+([0-9.]+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`)

// TestBenchRuns runs the whole benchmark briefly, every reply verified:
// each server must answer with replies that all verify, the table must
// have its rows and ratios, and no child may outlive the run. Nothing is
// asserted about speed.
func TestBenchRuns(t *testing.T) {
	short := []string{"-warmup", "100ms", "-duration", "300ms", "-inflight", "16", "-rounds", "1", "-verify-every", "1"}
	tests := []struct {
		name     string
		args     []string
		interop  bool // needs the testserver
		prebuilt bool // pass the testserver binary instead of its source
		want     []string
	}{
		{"both versions with the testserver", nil, true, false, []string{"timenode-b1", "timenode-b64", "testserver"}},
		{"google, batch 8, prebuilt testserver, not pinned", []string{"-versions", "google", "-batch", "8", "-server-cpu", "-1", "-load-cpu", "-1"},
			true, true, []string{"timenode-b1", "timenode-b8", "testserver"}},
		{"draft11 without the testserver", []string{"-versions", "draft11", "-testserver-src", ""}, false, false, []string{"timenode-b1", "timenode-b64"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, short...), tc.args...)
			if tc.interop {
				src := needInterop(t)
				if tc.prebuilt {
					bin, err := buildTestserver(src, t.TempDir())
					if err != nil {
						t.Fatal(err)
					}
					args = append(args, "-testserver", bin)
				} else {
					args = append(args, "-testserver-src", src)
				}
			}
			var out, errOut bytes.Buffer
			if code := run(args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d; output:\n%s\nerrors:\n%s", code, out.String(), errOut.String())
			}
			t.Logf("\n%s", out.String())
			rows := rowRE.FindAllStringSubmatch(out.String(), -1)
			var got []string
			for _, r := range rows {
				got = append(got, r[1])
				replies, _ := strconv.Atoi(r[2])
				verified, _ := strconv.Atoi(r[10])
				bad, _ := strconv.Atoi(r[11])
				if replies == 0 || verified == 0 || bad != 0 {
					t.Errorf("%s: %d replies/s, %d verified, %d bad; want replies, verifications and no failure", r[1], replies, verified, bad)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("rows %v, want %v", got, tc.want)
			}
			if tc.interop && !regexp.MustCompile(`(?m)^ratio timenode-b1/testserver: replies/s [0-9.]+x, replies/CPU-s [0-9.]+x`).MatchString(out.String()) {
				t.Error("no ratio line")
			}
			if !tc.interop && !strings.Contains(out.String(), "testserver left out: ") {
				t.Error("the testserver's absence is not explained")
			}
			if !strings.Contains(out.String(), "batching: ") {
				t.Error("no batching line")
			}
			if left := benchChildren(t); len(left) > 0 {
				t.Errorf("children still running after the bench: %v", left)
			}
		})
	}
}

// benchChildren lists processes the bench starts: our server (its
// environment) and the testserver (its command line).
func benchChildren(t *testing.T) []string {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, p := range procs {
		env, _ := os.ReadFile(p + "/environ")
		cmd, _ := os.ReadFile(p + "/cmdline")
		if bytes.Contains(env, []byte(envServe+"=")) || bytes.Contains(cmd, []byte("testserver\x00-addr\x00")) {
			pids = append(pids, filepath.Base(p)+" "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return pids
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-versions", "draft11,nope"}, `unknown version "nope"`},
		{[]string{"-versions", ""}, `unknown version ""`},
		{[]string{"-inflight", "0"}, "-inflight 0: want 1..1024"},
		{[]string{"-inflight", "5000"}, "-inflight 5000: want 1..1024"},
		{[]string{"-batch", "1"}, "-batch 1: want 2..512"},
		{[]string{"-batch", "513"}, "-batch 513: want 2..512"},
		{[]string{"-mmsg", "0"}, "-mmsg 0"},
		{[]string{"-rounds", "0"}, "-rounds 0"},
		{[]string{"-duration", "0s"}, "-duration and -timeout must be positive"},
		{[]string{"-verify-every", "0"}, "-verify-every 0"},
		{[]string{"-no-such-flag"}, "flag provided but not defined"},
		{[]string{"-rounds", "many"}, "invalid value"},
	}
	for _, tc := range tests {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut.String(), tc.want)
		}
		if left := benchChildren(t); len(left) > 0 {
			t.Fatalf("%v started children: %v", tc.args, left)
		}
	}
}

// TestFailuresCounted: replies signed under another long-term key, and
// replies larger than their request, are counted bad and never as
// replies.
func TestFailuresCounted(t *testing.T) {
	tmpl := make([]template, 2)
	for i, v := range []roughtime.Version{roughtime.VersionDraft11, roughtime.VersionGoogle} {
		var err error
		if tmpl[i], err = newTemplate(v, benchPublic()); err != nil {
			t.Fatal(err)
		}
	}
	cfg := loadConfig{templates: tmpl, inflight: 4, mmsg: 4, verifyEvery: 1, duration: 200 * time.Millisecond,
		timeout: time.Second, cpu: -1, serverPID: os.Getpid()}

	t.Run("wrong key", func(t *testing.T) {
		s, err := startOurs("timenode-b1", serveSpec{batch: 1}, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer s.stop()
		c := cfg
		c.addr = s.addr
		c.pub = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x43}, 32)).Public().(ed25519.PublicKey)
		r, err := runLoad(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if r.Bad == 0 || r.Replies != 0 || r.verified != 0 || !strings.Contains(r.firstBad, "delegation signature invalid") {
			t.Fatalf("bad %d, replies %d, verified %d, first %q", r.Bad, r.Replies, r.verified, r.firstBad)
		}
	})

	t.Run("larger than the request", func(t *testing.T) {
		// An amplifier: it answers each request with the request and 4
		// bytes more, to its source address (127.s.hi.lo).
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			buf := make([]byte, 4096)
			for {
				n, from, err := pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteToUDPAddrPort(buf[:n+4], from)
			}
		}()
		c := cfg
		c.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		c.pub = benchPublic()
		r, err := runLoad(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if r.Bad == 0 || r.Replies != 0 || !strings.Contains(r.firstBad, "reply of 1028 bytes to a 1024-byte request") {
			t.Fatalf("bad %d, replies %d, first %q", r.Bad, r.Replies, r.firstBad)
		}
	})
}

// TestTemplates: requests are exactly 1024 bytes, parse as their version
// with the nonce where the generator writes it, and a draft-11 request
// names the bench's key in SRV.
func TestTemplates(t *testing.T) {
	for _, v := range []roughtime.Version{roughtime.VersionDraft11, roughtime.VersionGoogle} {
		tm, err := newTemplate(v, benchPublic())
		if err != nil {
			t.Fatal(err)
		}
		pkt := bytes.Clone(tm.pkt)
		for i := tm.nonce[0]; i < tm.nonce[1]; i++ {
			pkt[i] = byte(i)
		}
		req, err := roughtime.ParseRequest(pkt)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if len(pkt) != roughtime.MinRequestSize || req.Version != v || !bytes.Equal(req.Nonce, pkt[tm.nonce[0]:tm.nonce[1]]) {
			t.Errorf("%v: %d bytes, version %v, nonce %x", v, len(pkt), req.Version, req.Nonce)
		}
		if wantSRV := v == roughtime.VersionDraft11; (req.SRV != nil) != wantSRV || (wantSRV && !bytes.Equal(req.SRV, roughtime.SRVValue(benchPublic()))) {
			t.Errorf("%v: SRV %x", v, req.SRV)
		}
	}
}

func TestSlotAddress(t *testing.T) {
	for _, tc := range []struct {
		id  int
		seq uint32
	}{{0, 0}, {1, 63}, {1023, 64}, {258, 1 << 20}} {
		s := slot{seq: tc.seq}
		id, seq, ok := slotOf(s.source(tc.id))
		if !ok || id != tc.id || seq != tc.seq%seqSpan {
			t.Errorf("slot %d seq %d -> %v -> %d, %d, %v", tc.id, tc.seq, s.source(tc.id), id, seq, ok)
		}
	}
	for _, a := range [][4]byte{{127, 0, 0, 1}, {10, 16, 0, 1}, {127, seqBase + seqSpan, 0, 0}} {
		if _, _, ok := slotOf(a); ok {
			t.Errorf("%v taken for a slot", a)
		}
	}
}

func TestServeSpec(t *testing.T) {
	for _, s := range []serveSpec{{batch: 1}, {batch: 64, window: 50 * time.Microsecond}} {
		got, err := parseServeSpec(s.String())
		if err != nil || got != s {
			t.Errorf("%+v -> %q -> %+v, %v", s, s.String(), got, err)
		}
	}
	for _, bad := range []string{"", "64", "x,0s", "64,soon"} {
		if _, err := parseServeSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
