//go:build linux

package futuretest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/hw/clock/internal/guest"
)

// resultMarker prefixes the guest's last line; the host accepts only
// resultMarker+"PASS".
const resultMarker = "TIMENODE_FUTURE_RESULT="

// Paths inside the guest.
const (
	guestSrc      = "/src"                // the tracked source tree
	guestTests    = "/tests"              // one static test binary per package
	guestBin      = "/bin"                // prebuilt timenoded and timenodectl
	guestManifest = "/tests/manifest.txt" // "binary<TAB>package dir" lines
	cmdlineDate   = "timenode.future="    // kernel parameter: the date asked for
)

// waitScale multiplies the wall-clock waits of the tests in the guest
// (testbin.Wait): under TCG on a shared host a daemon's lock took
// over the host's 60 s allowance once in four runs.
const waitScale = 5

// packageTimeout bounds one package's binary under TCG; the slowest
// package takes about 40 s natively.
const packageTimeout = 20 * time.Minute

func TestMain(m *testing.M) {
	if os.Getpid() != 1 {
		os.Exit(m.Run())
	}
	result := guestMain()
	fmt.Println(resultMarker + result)
	guest.Report(resultMarker + result + "\n")
	guest.PowerOff()
	os.Exit(1)
}

// guestMain prepares the guest, runs every package's tests and returns
// the result line.
func guestMain() string {
	if err := guest.Mount(); err != nil {
		return "FAIL setup: " + err.Error()
	}
	if err := guest.LoopbackUp(); err != nil {
		return "FAIL setup: " + err.Error()
	}
	if err := guest.RaiseFileLimit(); err != nil {
		return "FAIL setup: " + err.Error()
	}
	want, err := askedDate()
	if err != nil {
		return "FAIL setup: " + err.Error()
	}
	now := time.Now().UTC()
	guest.Report(fmt.Sprintf("CLOCK %s\n", now.Format(time.RFC3339)))
	// The RTC has a one-second resolution and the boot takes a while; a
	// clock behind the asked date, or more than a day past it, is not the
	// experiment asked for.
	if now.Before(want) || now.After(want.Add(24*time.Hour)) {
		return fmt.Sprintf("FAIL clock: the guest's clock reads %s, want %s", now.Format(time.RFC3339), want.Format(time.RFC3339))
	}
	manifest, err := os.ReadFile(guestManifest)
	if err != nil {
		return "FAIL setup: " + err.Error()
	}
	failed := 0
	for _, line := range strings.Split(strings.TrimSpace(string(manifest)), "\n") {
		bin, dir, ok := strings.Cut(line, "\t")
		if !ok {
			return "FAIL setup: bad manifest line " + line
		}
		if !runPackage(bin, dir) {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Sprintf("FAIL %d packages", failed)
	}
	return "PASS"
}

// askedDate reads the date the host asked for from the kernel command line.
func askedDate() (time.Time, error) {
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return time.Time{}, err
	}
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, cmdlineDate); ok {
			return time.Parse(time.RFC3339, v)
		}
	}
	return time.Time{}, fmt.Errorf("no %s on the kernel command line", cmdlineDate)
}

// runPackage runs one package's test binary from its source directory and
// reports it; it returns false when the package failed.
//
// A test that fails is run once more, alone. A date-dependent failure is
// deterministic and fails again, so it is still reported as a failure;
// one that passes the second time failed on TCG's timing, not on the
// date, and is reported as RETRY with its first failure's log, which the
// host prints at the end of its output without failing the run.
func runPackage(bin, dir string) bool {
	start := time.Now()
	out, err := runTests(bin, dir, "")
	r := summarize(out)
	var retried []string
	if err != nil && len(r.fail) > 0 {
		pattern := "^(" + strings.Join(topLevel(r.fail), "|") + ")$"
		if out2, err2 := runTests(bin, dir, pattern); err2 == nil {
			retried, err = r.failLog, nil
		} else {
			r2 := summarize(out2)
			r.failLog = append(r.failLog, "the rerun of "+pattern+" failed too:")
			r.failLog = append(r.failLog, r2.failLog...)
		}
	}
	status := "ok"
	if err != nil {
		status = "FAIL"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "PKG %s %s %.1fs pass=%d fail=%d skip=%d\n", dir, status, time.Since(start).Seconds(), r.pass, len(r.fail), len(r.skips))
	for _, s := range r.skips {
		fmt.Fprintf(&b, "SKIP %s %s\n", dir, s)
	}
	for _, l := range retried {
		fmt.Fprintf(&b, "RETRY %s | %s\n", dir, l)
	}
	if err != nil {
		fmt.Fprintf(&b, "ERR %s %v\n", dir, err)
		lines := r.failLog
		if len(lines) == 0 { // no test failed: a panic, a timeout, a setup error
			lines = tail(string(out), 60)
		}
		for _, l := range lines {
			fmt.Fprintf(&b, "OUT %s | %s\n", dir, l)
		}
	}
	guest.Report(b.String())
	return err == nil
}

// runTests runs a package's test binary, only the tests run matches when
// it is not empty, and returns its verbose output.
func runTests(bin, dir, run string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), packageTimeout)
	defer cancel()
	args := []string{"-test.v", "-test.count=1", "-test.timeout=" + packageTimeout.String()}
	if run != "" {
		args = append(args, "-test.run="+run)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(guestTests, bin), args...)
	cmd.Dir = filepath.Join(guestSrc, dir)
	cmd.Env = []string{"PATH=" + guestBin, "HOME=/tmp", "TMPDIR=/tmp", "USER=root", "TIMENODE_TEST_BINDIR=" + guestBin,
		// TCG emulates the CPU: tests wait longer, assert the same.
		testbin.ScaleEnv + "=" + strconv.Itoa(waitScale)}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// topLevel returns the distinct top-level test names of failed tests and
// subtests, quoted for a -test.run pattern.
func topLevel(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		top, _, _ := strings.Cut(n, "/")
		if !seen[top] {
			seen[top] = true
			out = append(out, regexp.QuoteMeta(top))
		}
	}
	return out
}

// result is what one package's verbose output says.
type result struct {
	pass    int
	fail    []string
	skips   []string // "TestName: reason"
	failLog []string // each failed test's own log lines, then its FAIL line
}

// maxLogLines bounds the log lines kept per test.
const maxLogLines = 40

var (
	runLine    = regexp.MustCompile(`^=== (?:RUN|CONT|PAUSE|NAME)\s+(\S+)`)
	endLine    = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)
	logLine    = regexp.MustCompile(`^\s*\S+\.go:\d+: (.*)$`)
	reasonless = "(no reason given)"
)

// summarize counts a `-test.v` output's results and finds each skipped
// test's reason: the last log line printed while that test was running.
func summarize(out []byte) result {
	var r result
	current := ""
	logs := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if m := runLine.FindStringSubmatch(line); m != nil {
			current = m[1]
			continue
		}
		if m := endLine.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "PASS":
				r.pass++
			case "FAIL":
				r.fail = append(r.fail, m[2])
				r.failLog = append(append(r.failLog, logs[m[2]]...), strings.TrimSpace(line))
			case "SKIP":
				reason := reasonless
				if l := logs[m[2]]; len(l) > 0 {
					reason = logLine.FindStringSubmatch(l[len(l)-1])[1]
				}
				r.skips = append(r.skips, m[2]+": "+reason)
			}
			continue
		}
		if logLine.MatchString(line) && current != "" && len(logs[current]) < maxLogLines {
			logs[current] = append(logs[current], strings.TrimSpace(line))
		}
	}
	return r
}

// tail returns the last n lines of s.
func tail(s string, n int) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
