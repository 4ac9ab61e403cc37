package ntp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// servedOffset is the known error of the served clock against the host
// clock in the real-client tests: the clients must measure it.
const servedOffset = 2500 * time.Microsecond

// offsetTolerance is how far the clients' measurement may stray from it.
const offsetTolerance = time.Millisecond

// maxSyncDistance is the largest measurement uncertainty a client may
// report before its sample is useless for checking the served offset.
const maxSyncDistance = 20 * time.Millisecond

var chronyWrongBy = regexp.MustCompile(`System clock wrong by (-?[0-9.]+) seconds`)

// TestChronyQueryMode runs chronyd as a client in query mode (-Q never sets
// the clock) against our server: it must accept a synchronized server and
// measure the served clock's offset, and refuse an unsynchronized one.
func TestChronyQueryMode(t *testing.T) {
	chronyd := requireTool(t, "chronyd", "chrony")
	tests := []struct {
		name     string
		synced   bool
		timeout  string
		wantExit int
	}{
		{"synchronized server accepted", true, "10", 0},
		{"unsynchronized server refused", false, "6", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status := func() Status { st := lockedStatus(); st.Synchronized = tc.synced; return st }
			s := startServer(t, Config{Workers: 1}, offsetClock{off: servedOffset}, status)
			port := s.Addr().(*net.UDPAddr).Port
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, chronyd, "-Q", "-t", tc.timeout,
				fmt.Sprintf("server 127.0.0.1 port %d iburst maxsamples 4", port)).CombinedOutput()
			exit := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				exit = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("chronyd: %v", err)
			}
			if exit != tc.wantExit {
				t.Fatalf("chronyd exit %d, want %d; output:\n%s", exit, tc.wantExit, out)
			}
			if !tc.synced {
				if st := s.Stats(); st.Unsynchronized == 0 {
					t.Errorf("chronyd refused without asking: stats %+v", st)
				}
				return
			}
			m := chronyWrongBy.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no offset in chronyd output:\n%s", out)
			}
			// chrony's "wrong by" is the server's clock minus the local
			// one (what it would step by): the served clock is ahead.
			got := parseSeconds(t, string(m[1]))
			if d := got - servedOffset; d < -offsetTolerance || d > offsetTolerance {
				t.Errorf("chrony says the clock is wrong by %v, want %v ± %v", got, servedOffset, offsetTolerance)
			}
			t.Logf("chrony: system clock wrong by %v (served clock is host %+v)", got, servedOffset)
		})
	}
}

// ntpdigResult is the part of ntpdig's JSON output the test reads.
type ntpdigResult struct {
	Offset float64 `json:"offset"`
	// Precision is ntpdig's synchronization distance for the sample
	// (half the round-trip delay plus clock imprecision): the most its
	// offset can be wrong, which grows when a loaded machine delays the
	// Python client's read of the reply.
	Precision float64 `json:"precision"`
	Stratum   int     `json:"stratum"`
	Leap      string  `json:"leap"`
}

// TestNtpdigInNamespace runs our server and ntpsec's ntpdig, which only
// talks to port 123, inside a network namespace created for the test.
func TestNtpdigInNamespace(t *testing.T) {
	ntpdig := requireTool(t, "ntpdig", "ntpsec-ntpdig")
	ip := requireTool(t, "ip", "iproute2")
	requireRoot(t, "create a network namespace")
	tests := []struct {
		name   string
		synced bool
	}{
		{"synchronized server accepted", true},
		{"unsynchronized server refused", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := fmt.Sprintf("tn-ntp-%d-%d", os.Getpid(), i)
			if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
				t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
			}
			t.Cleanup(func() {
				if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
					t.Errorf("ip netns del %s: %v: %s", ns, err, out)
				}
			})
			if out, err := exec.Command(ip, "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
				t.Fatalf("lo up in %s: %v: %s", ns, err, out)
			}
			inNS := []string{ip, "netns", "exec", ns}
			startHelper(t, inNS, "127.0.0.1:123", servedOffset, tc.synced)

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, ntpdig, "-j", "-t", "2", "127.0.0.1")
			var stderr, stdout []byte
			stdout, err := cmd.Output()
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				stderr = ee.Stderr
			}
			var res ntpdigResult
			parsed := json.Unmarshal(stdout, &res) == nil && len(stdout) > 0
			if !tc.synced {
				if err == nil && parsed {
					t.Fatalf("ntpdig accepted an unsynchronized server: %s", stdout)
				}
				t.Logf("ntpdig refused: %v: %s%s", err, stdout, stderr)
				return
			}
			if err != nil || !parsed {
				t.Fatalf("ntpdig: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
			}
			// ntpdig's offset is server minus local clock.
			got := time.Duration(res.Offset * float64(time.Second))
			dist := time.Duration(res.Precision * float64(time.Second))
			if dist > maxSyncDistance {
				t.Fatalf("ntpdig: synchronization distance %v over %v: the machine is too loaded to measure", dist, maxSyncDistance)
			}
			tol := offsetTolerance + dist
			if d := got - servedOffset; d < -tol || d > tol || res.Stratum != 1 {
				t.Errorf("ntpdig offset %v (± %v) stratum %d, want %v ± %v, stratum 1", got, dist, res.Stratum, servedOffset, tol)
			}
			t.Logf("ntpdig: offset %v ± %v stratum %d leap %q", got, dist, res.Stratum, res.Leap)
		})
	}
}
