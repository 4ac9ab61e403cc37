package apparmor

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// parser runs apparmor_parser with args and returns stdout, stderr and
// whether it exited 0.
func parser(t *testing.T, args ...string) (stdout, stderr string, ok bool) {
	t.Helper()
	cmd := exec.Command("apparmor_parser", args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("apparmor_parser %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), err == nil
}

// noKernelNote is what apparmor_parser prints on a host whose kernel has no
// AppArmor; it is not about the profile.
const noKernelNote = "Cache read/write disabled: interface file missing"

// compileErrors compiles profile without loading it (-Q skip kernel load, -K
// no cache, -T no cache read) and returns what went wrong: every stderr line
// except the no-kernel note, and the exit status. Nil means it compiled.
func compileErrors(t *testing.T, profile string) []string {
	t.Helper()
	_, errOut, ok := parser(t, "-Q", "-K", "-T", profile)
	var problems []string
	for _, l := range strings.Split(errOut, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, noKernelNote) {
			problems = append(problems, l)
		}
	}
	if !ok {
		problems = append(problems, "apparmor_parser exited non-zero")
	}
	return problems
}

// TestProfilesCompile compiles every profile we ship, and three broken ones
// as controls that prove a syntax or semantic error fails the check.
func TestProfilesCompile(t *testing.T) {
	testbin.NeedTool(t, "apparmor_parser", "apparmor")
	tests := []struct {
		name       string
		profile    string
		wantErrors bool
	}{
		{name: "daemon", profile: "usr.sbin.timenoded"},
		{name: "refresh sidecar", profile: "timenode-refresh"},
		{name: "control: missing comma", profile: "testdata/missing-comma", wantErrors: true},
		{name: "control: unknown capability", profile: "testdata/unknown-capability", wantErrors: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compileErrors(t, tt.profile)
			if (len(got) > 0) != tt.wantErrors {
				t.Errorf("apparmor_parser %s: %q, want errors = %v", tt.profile, got, tt.wantErrors)
			}
		})
	}
}

// rule is one file or capability rule of an expanded profile.
type rule struct {
	deny  bool
	path  string // empty for capability rules
	perms string // file permissions, or the capability name
}

var (
	fileRuleRE = regexp.MustCompile(`^((?:(?:audit|owner|deny)\s+)*)([/@]\S*)\s+([a-zA-Z]+)\s*,$`)
	capRuleRE  = regexp.MustCompile(`^((?:(?:audit|deny)\s+)*)capability(?:\s+([a-z_]+))?\s*,$`)
)

// expand returns the file and capability rules of profile with every
// include resolved (apparmor_parser -p), so rules from abstractions count.
func expand(t *testing.T, profile string) []rule {
	t.Helper()
	out, errOut, ok := parser(t, "-p", profile)
	if !ok {
		t.Fatalf("apparmor_parser -p %s: %s", profile, errOut)
	}
	var rules []rule
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "#"); i >= 0 {
			l = l[:i]
		}
		l = strings.TrimSpace(l)
		if m := fileRuleRE.FindStringSubmatch(l); m != nil {
			rules = append(rules, rule{deny: strings.Contains(m[1], "deny"), path: m[2], perms: m[3]})
		} else if m := capRuleRE.FindStringSubmatch(l); m != nil {
			rules = append(rules, rule{deny: strings.Contains(m[1], "deny"), perms: m[2]})
		}
	}
	return rules
}

// writeTargets returns the paths that allow rules let the profile write or
// append to.
func writeTargets(rules []rule) []string {
	var paths []string
	for _, r := range rules {
		if r.path != "" && !r.deny && strings.ContainsAny(r.perms, "wa") {
			paths = append(paths, r.path)
		}
	}
	sort.Strings(paths)
	return slices.Compact(paths)
}

// capabilities returns the capabilities the rules grant: allowed ones minus
// denied ones, none at all after a bare "deny capability".
func capabilities(rules []rule) []string {
	allowed := map[string]bool{}
	denied := map[string]bool{}
	denyAll := false
	for _, r := range rules {
		switch {
		case r.path != "":
		case r.deny && r.perms == "":
			denyAll = true
		case r.deny:
			denied[r.perms] = true
		default:
			allowed[r.perms] = true
		}
	}
	var caps []string
	for c := range allowed {
		if !denyAll && !denied[c] {
			caps = append(caps, c)
		}
	}
	sort.Strings(caps)
	return caps
}

// baseline is a profile that only includes abstractions/base: what every
// Debian profile may write (the null devices, the journal sockets) and is
// therefore not ours to justify.
const baseline = "abi <abi/3.0>,\ninclude <tunables/global>\nprofile baseline {\n  include <abstractions/base>\n}\n"

// TestProfilePolicy audits the expanded profiles: the exact capability set,
// and every write target beyond abstractions/base must be on the profile's
// list (state directory, sd_notify socket, GNSS, pty and PPS devices). The
// control profile compiles but writes to /etc/timenode and must be caught.
func TestProfilePolicy(t *testing.T) {
	testbin.NeedTool(t, "apparmor_parser", "apparmor")
	base := filepath.Join(t.TempDir(), "baseline")
	if err := os.WriteFile(base, []byte(baseline), 0o644); err != nil {
		t.Fatal(err)
	}
	baseWrites := writeTargets(expand(t, base))
	daemonWrites := []string{
		"/dev/gnss0",
		"/dev/pps[0-9]*",
		"/dev/ptmx",
		"/dev/pts/[0-9]*",
		"/dev/tty{S,USB,AMA,ACM,mxc}[0-9]*",
		"/var/lib/private/timenode/**",
		"/var/lib/timenode/**",
		"@{run}/systemd/notify",
	}
	tests := []struct {
		name       string
		profile    string
		wantCaps   []string
		mayWrite   []string
		wantBadOut bool
	}{
		{name: "daemon", profile: "usr.sbin.timenoded",
			wantCaps: []string{"ipc_lock", "net_bind_service", "sys_time"}, mayWrite: daemonWrites},
		{name: "refresh sidecar", profile: "timenode-refresh"},
		{name: "control: writes /etc", profile: "testdata/writes-etc",
			mayWrite: daemonWrites, wantBadOut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := expand(t, tt.profile)
			if got := capabilities(rules); !slices.Equal(got, tt.wantCaps) {
				t.Errorf("%s grants capabilities %q, want %q", tt.profile, got, tt.wantCaps)
			}
			var own, extra []string
			for _, p := range writeTargets(rules) {
				if slices.Contains(baseWrites, p) {
					continue
				}
				own = append(own, p)
				if !slices.Contains(tt.mayWrite, p) {
					extra = append(extra, p)
				}
			}
			t.Logf("%s may write (beyond abstractions/base): %q", tt.profile, own)
			if (len(extra) > 0) != tt.wantBadOut {
				t.Errorf("%s writes outside its list: %q, want violations = %v", tt.profile, extra, tt.wantBadOut)
			}
			if !tt.wantBadOut && !hasDenyPtrace(t, tt.profile) {
				t.Errorf("%s: no \"deny ptrace,\" rule", tt.profile)
			}
		})
	}
}

// hasDenyPtrace reports whether profile itself carries a bare "deny ptrace,"
// rule, which overrides the ptrace rules abstractions/base grants.
func hasDenyPtrace(t *testing.T, profile string) bool {
	t.Helper()
	b, err := os.ReadFile(profile)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "deny ptrace," {
			return true
		}
	}
	return false
}
