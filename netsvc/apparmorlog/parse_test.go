package apparmorlog

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

// fixtureLine returns the line of a testdata file holding all of subs.
func fixtureLine(t *testing.T, file string, subs ...string) string {
	t.Helper()
	f, err := os.Open("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
next:
	for sc.Scan() {
		for _, s := range subs {
			if !strings.Contains(sc.Text(), s) {
				continue next
			}
		}
		return sc.Text()
	}
	t.Fatalf("no line in %s with %q", file, subs)
	return ""
}

func TestParseClassifyRule(t *testing.T) {
	tests := []struct {
		name, file string
		match      []string
		wantOK     bool
		class      Class
		rule       string
		check      func(t *testing.T, d Denial)
	}{
		{"kern.log file read", "kern.log", []string{"server.key"}, true, FileRead, "/etc/timenode/tls/server.key r,", func(t *testing.T, d Denial) {
			if want := time.Date(2026, 3, 1, 11, 58, 0, 100e6, time.UTC); !d.Time.Equal(want) || d.Serial != 301 {
				t.Errorf("stamp %v:%d, want %v:301", d.Time, d.Serial, want)
			}
		}},
		{"kern.log file create", "kern.log", []string{"mknod"}, true, FileWrite, "/var/lib/timenode/state.json.tmp w,", nil},
		{"kern.log network bind", "kern.log", []string{`operation="bind"`}, true, NetworkBind, "network inet6 stream,", nil},
		{"kern.log capability", "kern.log", []string{"sys_resource"}, true, Capability, "capability sys_resource,", nil},
		{"kern.log allowed is not a denial", "kern.log", []string{"ALLOWED"}, false, "", "", nil},
		{"kern.log other line", "kern.log", []string{"usb 1-1"}, false, "", "", nil},
		{"syslog date, no class, tty read-write", "kern.log", []string{"ttyAMA0"}, true, FileWrite, "/dev/ttyAMA[0-9]* rw,", nil},
		{"journal network connect", "journal.log", []string{"kernel: audit", `operation="connect"`}, true, NetworkConnect, "network inet stream,", nil},
		{"journal AVC line without stamp", "journal.log", []string{"audit[901]: AVC"}, true, NetworkConnect, "network inet stream,", func(t *testing.T, d Denial) {
			if !d.Time.IsZero() || d.Profile != "timenode-refresh" {
				t.Errorf("time %v profile %q, want zero and timenode-refresh", d.Time, d.Profile)
			}
		}},
		{"journal ptrace", "journal.log", []string{"ptrace"}, true, Ptrace, "deny ptrace (read) peer=unconfined,", nil},
		{"journal hex comm, proc path", "journal.log", []string{"cgroup"}, true, FileRead, "@{PROC}/@{pid}/cgroup r,", func(t *testing.T, d Denial) {
			if d.Comm != "timenoded" {
				t.Errorf("comm %q, want the hex decoded", d.Comm)
			}
		}},
		{"journal socket create", "journal.log", []string{"netlink"}, true, NetworkOther, "network netlink raw,", nil},
		{"journal signal is other", "journal.log", []string{"signal"}, true, Other, "", nil},
		{"journal hex path with a space is quoted", "journal.log", []string{"2F6574"}, true, FileRead, `"/etc/timenode/tls/old key.pem" r,`, nil},
		{"audit.log AVC", "audit.log", []string{"server.crt"}, true, FileRead, "/etc/timenode/tls/server.crt r,", func(t *testing.T, d Denial) {
			if d.Serial != 501 || d.Time.Unix() != 1772366400 || d.Time.Nanosecond() != 250e6 {
				t.Errorf("stamp %v:%d", d.Time, d.Serial)
			}
		}},
		{"audit.log SYSCALL is not a denial", "audit.log", []string{"type=SYSCALL"}, false, "", "", nil},
		{"audit.log APPARMOR_DENIED sys_ptrace", "audit.log", []string{"APPARMOR_DENIED"}, true, Capability, "deny capability sys_ptrace,", nil},
		{"audit.log sendmsg", "audit.log", []string{"sendmsg"}, true, NetworkConnect, "network inet stream,", nil},
		{"audit.log STATUS", "audit.log", []string{"STATUS"}, false, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := fixtureLine(t, tt.file, tt.match...)
			d, ok := ParseLine(line)
			if ok != tt.wantOK {
				t.Fatalf("ParseLine ok = %v, want %v for %s", ok, tt.wantOK, line)
			}
			if !ok {
				return
			}
			if got := Classify(d); got != tt.class {
				t.Errorf("Classify = %s, want %s (%+v)", got, tt.class, d)
			}
			if got := Rule(d); got != tt.rule {
				t.Errorf("Rule = %q, want %q", got, tt.rule)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestRuleRefusesInjection(t *testing.T) {
	tests := []struct {
		name string
		d    Denial
		want string
	}{
		{"glob in path", Denial{Operation: "open", Name: "/etc/**", DeniedMask: "r"}, ""},
		{"newline in path", Denial{Operation: "open", Name: "/tmp/x,\n  /** rw", DeniedMask: "r"}, ""},
		{"comma in path is quoted", Denial{Operation: "open", Name: "/tmp/a, /b", DeniedMask: "w"}, `"/tmp/a, /b" w,`},
		{"odd capability name", Denial{Operation: "capable", CapName: "sys_admin,\n/** rw"}, ""},
		{"odd family dropped", Denial{Operation: "connect", Family: "inet,/**", SockType: "stream"}, "network stream,"},
		{"quoted peer", Denial{Operation: "ptrace", DeniedMask: "trace", Peer: `a b"c`}, `deny ptrace (trace) peer="a bc",`},
		{"hash in peer is quoted", Denial{Operation: "ptrace", DeniedMask: "read", Peer: "a#b"}, `deny ptrace (read) peer="a#b",`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Rule(tt.d); got != tt.want {
				t.Errorf("Rule = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMatchProfile(t *testing.T) {
	tests := []struct {
		profile string
		want    bool
	}{
		{"timenoded", true},
		{"/usr/sbin/timenoded", true},
		{"timenoded//null-/usr/bin/true", true},
		{"timenode-refresh", true},
		{"timenoded2", false},
		{"/usr/sbin/chronyd", false},
	}
	for _, tt := range tests {
		if got := MatchProfile(tt.profile, DefaultProfiles); got != tt.want {
			t.Errorf("MatchProfile(%q) = %v, want %v", tt.profile, got, tt.want)
		}
	}
}
