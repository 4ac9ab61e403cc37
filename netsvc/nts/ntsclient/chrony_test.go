package ntsclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// freePort returns a loopback port that was free for network (tcp or
// udp) a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// chronyServer is a chronyd serving NTS on loopback.
type chronyServer struct {
	keAddr, ntpAddr string
	ca              *testCA
	log             *strings.Builder
}

// startChrony runs chronyd -x -d as an NTS server on 127.0.0.1: -x so
// it never touches the host clock, `local stratum 1` so it serves time
// with no source, no command socket, everything in a temporary
// directory. The test's cleanup stops it by its pid.
func startChrony(t *testing.T) *chronyServer {
	t.Helper()
	chronyd := testbin.NeedTool(t, "chronyd", "chrony")
	ca := newTestCA(t, "chrony")
	// chronyd drops root privileges to _chrony unless told otherwise;
	// the test's files are private to the test's user.
	dir, err := os.MkdirTemp("", "ntsclient-chrony-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ntpPort, kePort := freePort(t, "udp"), freePort(t, "tcp")
	conf := filepath.Join(dir, "chrony.conf")
	lines := []string{
		"bindaddress 127.0.0.1",
		fmt.Sprintf("port %d", ntpPort),
		fmt.Sprintf("ntsport %d", kePort),
		"ntsserverkey " + ca.keyPEM,
		"ntsservercert " + ca.certPEM,
		"ntsdumpdir " + dir,
		"local stratum 1",
		"allow 127.0.0.1",
		"pidfile " + filepath.Join(dir, "chronyd.pid"),
		"cmdport 0",
		"bindcmdaddress /",
	}
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-x", "-d", "-f", conf}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	cmd := exec.Command(chronyd, args...)
	log := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chronyd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(testbin.Wait(10 * time.Second)):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("chronyd did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("chronyd output:\n%s", log)
		}
	})
	s := &chronyServer{
		keAddr:  net.JoinHostPort("127.0.0.1", fmt.Sprint(kePort)),
		ntpAddr: net.JoinHostPort("127.0.0.1", fmt.Sprint(ntpPort)),
		ca:      ca, log: log,
	}
	// Ready when the KE port takes connections.
	deadline := time.Now().Add(testbin.Wait(10 * time.Second))
	for {
		c, err := net.DialTimeout("tcp", s.keAddr, time.Second)
		if err == nil {
			_ = c.Close()
			return s
		}
		select {
		case <-done:
			t.Fatalf("chronyd exited:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chronyd's NTS-KE port %s never opened: %v\n%s", s.keAddr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queryUntil queries until an authenticated measurement arrives (chronyd
// may take a moment to call its local reference synchronised).
func queryUntil(t *testing.T, c *Client, within time.Duration) (*Result, error) {
	t.Helper()
	deadline := time.Now().Add(testbin.Wait(within))
	for {
		res, err := c.Query(context.Background())
		if err == nil || time.Now().After(deadline) || !errors.Is(err, ErrUnsynchronized) {
			return res, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestChronyServer is the interoperability test with a real NTS server:
// chronyd -x (which never adjusts the host clock) serving its own clock,
// the host's, on loopback. The client must complete NTS-KE, learn the NTP
// port from it, and measure an offset near zero from authenticated
// replies; with a wrong CA the KE must fail; a reply changed on the way
// must be rejected.
func TestChronyServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs chronyd")
	}
	s := startChrony(t)

	t.Run("authenticated", func(t *testing.T) {
		c := newClient(t, Config{Addr: s.keAddr, RootCAs: s.ca.roots})
		res, err := queryUntil(t, c, 10*time.Second)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		t.Logf("first: offset %v delay %v KE %v stratum %d refid %q root delay %v dispersion %v ntp %s",
			res.Offset, res.Delay, res.KE, res.Stratum, res.RefID, res.RootDelay, res.RootDispersion, res.NTPAddr)
		if res.NTPAddr != s.ntpAddr {
			t.Errorf("NTP went to %s, want %s (the port chronyd announced)", res.NTPAddr, s.ntpAddr)
		}
		for i := range 3 {
			if res, err = c.Query(context.Background()); err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
			t.Logf("query %d: offset %v delay %v KE %v", i, res.Offset, res.Delay, res.KE)
			// chronyd serves the host clock: a correct exchange measures
			// next to nothing; 50 ms is a generous bound on loopback.
			if res.Offset > 50*time.Millisecond || res.Offset < -50*time.Millisecond {
				t.Errorf("query %d: offset %v, want near 0", i, res.Offset)
			}
			if res.KE != 0 {
				t.Errorf("query %d: KE again with %d cookies held", i, c.Cookies())
			}
		}
		if st := c.Stats(); st.KESessions != 1 || st.NAKs != 0 || st.Rejected != 0 || c.Cookies() != MaxCookies {
			t.Errorf("client stats %+v, %d cookies", st, c.Cookies())
		}
	})

	t.Run("wrong CA", func(t *testing.T) {
		wrong := newTestCA(t, "wrong")
		c := newClient(t, Config{Addr: s.keAddr, RootCAs: wrong.roots})
		_, err := c.Query(context.Background())
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Fatalf("query: %v, want a certificate verification error", err)
		}
	})

	t.Run("tampered reply", func(t *testing.T) {
		proxy := startUDPProxy(t, s.ntpAddr, func(b []byte) { b[47] ^= 1 })
		c := newClient(t, Config{Addr: s.keAddr, RootCAs: s.ca.roots, NTPAddr: proxy.addr()})
		c.cfg.NTPTimeout = testbin.Wait(500 * time.Millisecond)
		if _, err := queryUntil(t, c, 10*time.Second); err != nil {
			t.Fatalf("honest query through the proxy: %v", err)
		}
		proxy.tamper.Store(true)
		_, err := c.Query(context.Background())
		if !errors.Is(err, ErrAuthentication) {
			t.Fatalf("tampered reply: %v, want ErrAuthentication", err)
		}
		if proxy.tampered.Load() != 1 || c.Stats().Rejected != 1 {
			t.Errorf("tampered %d replies, client rejected %d", proxy.tampered.Load(), c.Stats().Rejected)
		}
	})
}
