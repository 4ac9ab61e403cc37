package apparmorlog

import (
	"regexp"
	"strings"
)

// Class is what kind of access a denial refused.
type Class string

// Classes, the "class" label of mtls_app_armor_denials_total.
const (
	FileRead       Class = "file_read"
	FileWrite      Class = "file_write"
	NetworkBind    Class = "network_bind"
	NetworkConnect Class = "network_connect"
	NetworkOther   Class = "network_other" // socket create, setsockopt, …
	Capability     Class = "capability"
	Ptrace         Class = "ptrace"
	Other          Class = "other"
)

// Classes lists every class in report order.
func Classes() []Class {
	return []Class{FileRead, FileWrite, NetworkBind, NetworkConnect, NetworkOther, Capability, Ptrace, Other}
}

// DefaultProfiles are the profiles timenode ships: the daemon (by its
// profile name, its attachment path, and its file name) and the sidecar.
var DefaultProfiles = []string{"timenoded", "/usr/sbin/timenoded", "usr.sbin.timenoded", "timenode-refresh"}

// MatchProfile reports whether the denial's profile, or the profile a
// child profile ("timenoded//null-…") belongs to, is one of names.
func MatchProfile(profile string, names []string) bool {
	root, _, _ := strings.Cut(profile, "//")
	for _, n := range names {
		if profile == n || root == n {
			return true
		}
	}
	return false
}

var fileOps = map[string]bool{
	"open": true, "mknod": true, "truncate": true, "unlink": true, "rename_src": true, "rename_dest": true,
	"mkdir": true, "rmdir": true, "link": true, "symlink": true, "chmod": true, "chown": true,
	"getattr": true, "setattr": true, "exec": true, "file_mmap": true, "file_lock": true,
	"file_perm": true, "file_receive": true, "file_inherit": true, "xattr": true,
}

// Classify sorts a denial into a Class.
func Classify(d Denial) Class {
	switch {
	case d.Operation == "capable" || d.Class == "cap":
		return Capability
	case d.Operation == "ptrace" || d.Class == "ptrace":
		return Ptrace
	case d.Family != "" || d.Class == "net":
		switch d.Operation {
		case "bind", "listen", "accept":
			return NetworkBind
		case "connect", "sendmsg", "recvmsg":
			return NetworkConnect
		}
		return NetworkOther
	case fileOps[d.Operation] || d.Class == "file":
		if strings.ContainsAny(d.DeniedMask, "wacdl") {
			return FileWrite
		}
		return FileRead
	}
	return Other
}

var (
	pidPath = regexp.MustCompile(`^/proc/[0-9]+/`)
	ttyPath = regexp.MustCompile(`^/dev/(tty[A-Za-z]*|pps)[0-9]+$`)
)

// PathPrefix is the first two components of a file path ("/etc/timenode"),
// the grouping key for file denials.
func PathPrefix(p string) string {
	parts := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 3)
	if len(parts) <= 2 {
		return p
	}
	return "/" + parts[0] + "/" + parts[1]
}

// Rule returns the AppArmor rule that would allow the denied access, or
// "" when the access needs a human (other operations, or a profile that
// must keep denying it: ptrace and sys_ptrace get a quiet deny rule).
// Values from the log are quoted and stripped of anything that could end
// the rule early, so a hostile path cannot inject profile text.
func Rule(d Denial) string {
	switch Classify(d) {
	case Capability:
		if !isWord(d.CapName) {
			return ""
		}
		if d.CapName == "sys_ptrace" {
			return "deny capability sys_ptrace,"
		}
		return "capability " + d.CapName + ","
	case Ptrace:
		mask := d.DeniedMask
		if !isWord(mask) {
			mask = "trace"
		}
		peer := "unconfined"
		if d.Peer != "" {
			peer = quoteIfNeeded(d.Peer)
		}
		return "deny ptrace (" + mask + ") peer=" + peer + ","
	case NetworkBind, NetworkConnect, NetworkOther:
		r := "network"
		if isWord(d.Family) && d.Family != "unspec" {
			r += " " + d.Family
		}
		if isWord(d.SockType) {
			r += " " + d.SockType
		}
		return r + ","
	case FileRead, FileWrite:
		// Glob and variable characters would widen the rule: a human decides.
		if !strings.HasPrefix(d.Name, "/") || strings.ContainsAny(d.Name, "*?[]{}@^\"\\\x00\n\r") {
			return ""
		}
		p := pidPath.ReplaceAllString(d.Name, "@{PROC}/@{pid}/")
		p = ttyPath.ReplaceAllStringFunc(p, func(s string) string { return strings.TrimRight(s, "0123456789") + "[0-9]*" })
		return quoteIfNeeded(p) + " " + fileMask(d.DeniedMask) + ","
	}
	return ""
}

// fileMask maps a denied mask to rule permissions: c/d/a (create,
// delete, append) need w; exec becomes ix (inherit) as the safest choice.
func fileMask(m string) string {
	var r, w, k, l, mm, x bool
	for _, c := range m {
		switch c {
		case 'r':
			r = true
		case 'w', 'a', 'c', 'd':
			w = true
		case 'k':
			k = true
		case 'l':
			l = true
		case 'm':
			mm = true
		case 'x':
			x = true
		}
	}
	out := ""
	for _, p := range []struct {
		on bool
		s  string
	}{{r, "r"}, {w, "w"}, {k, "k"}, {l, "l"}, {mm, "m"}, {x, "ix"}} {
		if p.on {
			out += p.s
		}
	}
	if out == "" {
		out = "r"
	}
	return out
}

func isWord(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// quoteIfNeeded quotes a path or profile name that has characters the
// profile grammar treats specially, dropping those that can never be in
// a quoted string (quote, backslash, newline, NUL).
func quoteIfNeeded(s string) string {
	clean := strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if clean != s || strings.ContainsAny(clean, " \t,#()=") {
		return `"` + clean + `"`
	}
	return clean
}
