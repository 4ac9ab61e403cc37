package nts

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc/ntp"
)

var wrongBy = regexp.MustCompile(`System clock wrong by (-?[0-9.]+) seconds`)

// runChrony runs chronyd -Q (query only: it never adjusts the clock) as an
// NTS client of our servers with ca as its only trust anchor, and returns
// its output, whether it exited 0 and the offset it reported, if any.
// authselectmode require makes chronyd ignore any unauthenticated sample,
// so a reported offset is an authenticated one.
func runChrony(t *testing.T, chronyd, ca string, ntpPort, kePort int, timeout int) (string, bool, *time.Duration) {
	t.Helper()
	source := fmt.Sprintf("server 127.0.0.1 port %d nts ntsport %d iburst maxsamples 4", ntpPort, kePort)
	return runChronySource(t, chronyd, ca, source, timeout)
}

// runChronySource is runChrony with the source directive given.
func runChronySource(t *testing.T, chronyd, ca, source string, timeout int) (string, bool, *time.Duration) {
	t.Helper()
	// chronyd drops root privileges to _chrony unless told otherwise; the
	// test's temporary files are private to the test's user.
	dir, err := os.MkdirTemp("", "nts-chrony-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	dump := filepath.Join(dir, "ntsdump")
	if err := os.Mkdir(dump, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "chrony.conf")
	lines := []string{
		source,
		"ntstrustedcerts " + ca,
		"nosystemcert",
		"authselectmode require",
		"ntsdumpdir " + dump,
		"pidfile " + filepath.Join(dir, "chronyd.pid"),
		"logdir " + dir,
		"log measurements",
		"cmdport 0",
		"bindcmdaddress /",
	}
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-Q", "-f", conf, "-t", strconv.Itoa(timeout)}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	// The context only bounds a hung chronyd; -t ends it normally.
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeout+20)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chronyd, args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("chronyd did not exit within its timeout: %s", out)
	}
	if m, _ := os.ReadFile(filepath.Join(dir, "measurements.log")); len(m) > 0 {
		t.Logf("measurements.log:\n%s", m)
	}
	var off *time.Duration
	if m := wrongBy.FindSubmatch(out); m != nil {
		f, perr := strconv.ParseFloat(string(m[1]), 64)
		if perr != nil {
			t.Fatalf("offset %q: %v", m[1], perr)
		}
		d := time.Duration(f * float64(time.Second))
		off = &d
	}
	return string(out), err == nil, off
}

// TestChronyInterop is the interoperability test with a real NTS client:
// chronyd -Q must complete NTS-KE with our KE server, trust it through the
// test CA, and accept authenticated samples from our NTP server whose time
// is the host clock (so the offset is near zero); with a wrong CA it must
// fail the NTS-KE and report nothing.
func TestChronyInterop(t *testing.T) {
	chronyd := testbin.NeedTool(t, "chronyd", "chrony")
	if testing.Short() {
		t.Skip("runs chronyd for about 10 s")
	}
	pki := newTestPKI(t, "chrony")
	ke := startKE(t, Config{Certificates: []tls.Certificate{pki.server}, Log: testLogger()})
	srv := startNTP(t, "127.0.0.1:0", ke.Processor(), ntp.DefaultRateLimit)
	ntpPort := srv.Addr().(*net.UDPAddr).Port
	kePort := ke.Addr().(*net.TCPAddr).Port

	t.Run("trusted CA", func(t *testing.T) {
		out, ok, off := runChrony(t, chronyd, pki.caPEM, ntpPort, kePort, 30)
		st := ke.Stats()
		t.Logf("chronyd: %s\nNTS stats: %+v", out, st)
		if !ok || off == nil {
			t.Fatalf("chronyd -Q did not synchronise to the NTS server")
		}
		// The server's clock is the host clock, so a correct exchange
		// measures next to nothing; 50 ms is a generous bound on loopback.
		if *off > 50*time.Millisecond || *off < -50*time.Millisecond {
			t.Errorf("offset %v, want near 0", *off)
		}
		if st.KEResponses < 1 || st.NTPAuthenticated < 1 || st.NTPBadAuth+st.NTPBadCookie+st.NTPMalformed != 0 {
			t.Errorf("server saw %+v, want a KE session and only authenticated requests", st)
		}
		if nst := srv.Stats(); nst.NTSReplies < 1 || nst.NTSNAKs != 0 {
			t.Errorf("NTP stats %+v", nst)
		}
	})

	// The control that makes "authenticated" mean something: the same
	// server without NTS must not satisfy authselectmode require.
	t.Run("plain NTP refused by authselectmode require", func(t *testing.T) {
		out, ok, off := runChronySource(t, chronyd, pki.caPEM,
			fmt.Sprintf("server 127.0.0.1 port %d iburst maxsamples 4", ntpPort), 8)
		t.Logf("chronyd: %s", out)
		if ok || off != nil {
			t.Fatalf("chronyd accepted an unauthenticated source: the authenticated check proves nothing")
		}
	})

	t.Run("wrong CA", func(t *testing.T) {
		before := ke.Stats()
		wrong := newTestPKI(t, "wrong")
		out, ok, off := runChrony(t, chronyd, wrong.caPEM, ntpPort, kePort, 8)
		after := ke.Stats()
		t.Logf("chronyd: %s\nNTS stats: %+v", out, after)
		if ok || off != nil {
			t.Fatalf("chronyd synchronised through a server its CA does not vouch for")
		}
		if after.HandshakeFailures == before.HandshakeFailures {
			t.Errorf("no failed handshake seen: chronyd may not have tried NTS-KE")
		}
		if after.KEResponses != before.KEResponses || after.NTPAuthenticated != before.NTPAuthenticated {
			t.Errorf("KE or NTS exchanges succeeded with the wrong CA: %+v", after)
		}
	})
}
