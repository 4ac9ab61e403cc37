package nftables

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// segment is one client network wired straight to the node: a namespace
// holding .2 of prefix, and a veth whose node end holds .1.
type segment struct {
	role   string // "app", "mon", "mgmt", "other"
	prefix string // first three octets, e.g. "10.80.0"
}

// nodeAddr is the node's address on the segment, clientAddr the client's.
func (s segment) nodeAddr() string   { return s.prefix + ".1" }
func (s segment) clientAddr() string { return s.prefix + ".2" }

// lab is a set of network namespaces made for one test: a "node" and one
// namespace per segment. Names carry the test process's PID so parallel runs
// on one host do not clash. Everything it creates is removed in t.Cleanup,
// whether the test passed or not.
type lab struct {
	t      *testing.T
	prefix string
	tool   string // path of the nstool binary
}

// needRoot skips the test when it cannot create namespaces, and fails it
// when CI=true.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root for ip netns and nft inside namespaces"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// newLab builds the nstool fixture and the namespaces for segs.
func newLab(t *testing.T, segs []segment) *lab {
	t.Helper()
	l := &lab{t: t, prefix: fmt.Sprintf("tn%d", os.Getpid()), tool: buildTool(t)}
	l.addNS(l.node())
	l.sh(l.t, "ip", "-n", l.node(), "link", "set", "lo", "up")
	for _, s := range segs {
		ns := l.ns(s.role)
		l.addNS(ns)
		link := "c-" + s.role
		l.sh(l.t, "ip", "-n", l.node(), "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
		l.sh(l.t, "ip", "-n", l.node(), "addr", "add", s.nodeAddr()+"/24", "dev", link)
		l.sh(l.t, "ip", "-n", l.node(), "link", "set", link, "up")
		l.sh(l.t, "ip", "-n", ns, "addr", "add", s.clientAddr()+"/24", "dev", "eth0")
		l.sh(l.t, "ip", "-n", ns, "link", "set", "eth0", "up")
		l.sh(l.t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	return l
}

// buildTool compiles internal/nstool into a temporary directory.
func buildTool(t *testing.T) string {
	t.Helper()
	testbin.NeedTool(t, "go", "golang-go")
	out := filepath.Join(t.TempDir(), "nstool")
	cmd := exec.Command("go", "build", "-o", out, "./internal/nstool")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build nstool: %v\n%s", err, b)
	}
	return out
}

// ns is the namespace name for role; node() the node's.
func (l *lab) ns(role string) string { return l.prefix + "-" + role }
func (l *lab) node() string          { return l.ns("node") }

// addNS creates a namespace and registers its removal (veths go with it).
func (l *lab) addNS(name string) {
	l.t.Helper()
	l.sh(l.t, "ip", "netns", "add", name)
	l.t.Cleanup(func() {
		if b, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			l.t.Errorf("ip netns del %s: %v %s", name, err, b)
		}
	})
}

// sh runs a command on the host and fails the test if it fails.
func (l *lab) sh(t *testing.T, args ...string) string {
	t.Helper()
	b, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return string(b)
}

// in runs a command inside namespace ns and returns its output.
func (l *lab) in(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return l.sh(t, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// serve starts `nstool serve` in ns, waits until every port is bound, and
// registers its termination.
func (l *lab) serve(ns string, tcp, udp []int) {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, l.tool, "serve",
		"-tcp", joinPorts(tcp), "-udp", joinPorts(udp))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start nstool serve in %s: %v", ns, err)
	}
	l.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
	}()
	select {
	case ok := <-ready:
		if !ok {
			l.t.Fatalf("nstool serve in %s did not come up", ns)
		}
	case <-time.After(15 * time.Second):
		l.t.Fatalf("nstool serve in %s: no readiness after 15s", ns)
	}
}

// joinPorts formats ports as a comma-separated list.
func joinPorts(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}

// tcpScan runs an nmap SYN scan of ports on addr from namespace ns and
// returns nmap's state per port ("open", "filtered", "closed").
func (l *lab) tcpScan(t *testing.T, ns, addr string, ports []int) map[int]string {
	t.Helper()
	out := l.in(t, ns, "nmap", "-n", "-Pn", "-sS", "--max-retries", "1",
		"-p", joinPorts(ports), "-oG", "-", addr)
	states := map[int]string{}
	for _, line := range strings.Split(out, "\n") {
		_, list, ok := strings.Cut(line, "Ports: ")
		if !ok {
			continue
		}
		if i := strings.Index(list, "\t"); i >= 0 {
			list = list[:i]
		}
		for _, entry := range strings.Split(list, ", ") {
			var port int
			f := strings.Split(entry, "/")
			if len(f) < 2 {
				continue
			}
			if _, err := fmt.Sscan(f[0], &port); err == nil {
				states[port] = f[1]
			}
		}
	}
	// nmap folds many ports of one state into "Ignored State"; name them.
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "Ignored State: "); i >= 0 {
			state, _, _ := strings.Cut(line[i+len("Ignored State: "):], " ")
			for _, p := range ports {
				if _, seen := states[p]; !seen {
					states[p] = state
				}
			}
		}
	}
	if len(states) != len(ports) {
		t.Fatalf("nmap from %s to %s: states for %d of %d ports:\n%s", ns, addr, len(states), len(ports), out)
	}
	return states
}

// udpEchoes asks nstool in namespace ns which UDP ports on addr echo back.
func (l *lab) udpEchoes(t *testing.T, ns, addr string, ports []int) map[int]bool {
	t.Helper()
	args := []string{l.tool, "udpprobe", "-timeout", "1s", addr}
	for _, p := range ports {
		args = append(args, fmt.Sprint(p))
	}
	got := map[int]bool{}
	for _, line := range strings.Split(strings.TrimSpace(l.in(t, ns, args...)), "\n") {
		var port int
		var verdict string
		if _, err := fmt.Sscan(line, &port, &verdict); err != nil {
			t.Fatalf("udpprobe output %q: %v", line, err)
		}
		got[port] = verdict == "reply"
	}
	return got
}

// tcpConnects dials addr:port n times from ns and returns how many connected.
func (l *lab) tcpConnects(t *testing.T, ns, addr string, port, n int) int {
	t.Helper()
	var ok int
	out := l.in(t, ns, l.tool, "tcpconnect", "-timeout", "300ms", "-n", fmt.Sprint(n), addr, fmt.Sprint(port))
	if _, err := fmt.Sscan(out, &ok); err != nil {
		t.Fatalf("tcpconnect output %q: %v", out, err)
	}
	return ok
}

// counter returns the packet count of a named counter in the node's
// "inet timenode" table.
func (l *lab) counter(t *testing.T, name string) int {
	t.Helper()
	out := l.in(t, l.node(), "nft", "list", "counter", "inet", "timenode", name)
	_, rest, ok := strings.Cut(out, "packets ")
	var n int
	if !ok {
		t.Fatalf("counter %s: %q", name, out)
	}
	if _, err := fmt.Sscan(rest, &n); err != nil {
		t.Fatalf("counter %s: %q: %v", name, out, err)
	}
	return n
}
