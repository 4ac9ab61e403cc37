package apparmorlog

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Denial is one apparmor="DENIED" record. Fields absent from the line
// are empty.
type Denial struct {
	Time          time.Time // from audit(SECONDS.MILLIS:SERIAL); zero if the line has none
	Serial        uint64    // audit record serial
	Operation     string    // open, mknod, create, bind, connect, capable, ptrace, signal, …
	Class         string    // file, net, cap, ptrace, … (newer kernels only)
	Profile       string
	Name          string // file path, or the profile name for profile operations
	Comm          string
	RequestedMask string
	DeniedMask    string
	Family        string // inet, inet6, unix, netlink, …
	SockType      string // stream, dgram, raw, …
	Protocol      string
	CapName       string // capability name for operation="capable"
	Peer          string // ptrace/signal peer profile
	Info          string
}

// ParseLine extracts a denial from one log line in any of the formats
// operators meet: /var/log/kern.log (syslog prefix, optional
// "[ uptime]"), `journalctl -k`, dmesg, and auditd's audit.log
// ("type=AVC msg=audit(…):" or "type=APPARMOR_DENIED msg=audit(…):").
// ok is false for every other line, including ALLOWED and AUDIT records.
func ParseLine(line string) (d Denial, ok bool) {
	i := strings.Index(line, "apparmor=")
	if i < 0 {
		return Denial{}, false
	}
	kv := fields(line[i:])
	if kv["apparmor"] != "DENIED" {
		return Denial{}, false
	}
	d = Denial{
		Operation: kv["operation"], Class: kv["class"], Profile: kv["profile"], Name: kv["name"],
		Comm: kv["comm"], RequestedMask: kv["requested_mask"], DeniedMask: kv["denied_mask"],
		Family: kv["family"], SockType: kv["sock_type"], Protocol: kv["protocol"],
		CapName: kv["capname"], Peer: kv["peer"], Info: kv["info"],
	}
	d.Time, d.Serial = auditStamp(line[:i])
	return d, true
}

// auditStamp reads "audit(1709000000.123:456)" from the line's prefix.
func auditStamp(prefix string) (time.Time, uint64) {
	j := strings.LastIndex(prefix, "audit(")
	if j < 0 {
		return time.Time{}, 0
	}
	rest := prefix[j+len("audit("):]
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return time.Time{}, 0
	}
	stamp, serial, _ := strings.Cut(rest[:end], ":")
	secs, frac, _ := strings.Cut(stamp, ".")
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || s < 0 {
		return time.Time{}, 0
	}
	var ns int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil || f < 0 {
			return time.Time{}, 0
		}
		for k := len(frac); k < 9; k++ {
			f *= 10
		}
		ns = f
	}
	n, _ := strconv.ParseUint(serial, 10, 64)
	return time.Unix(s, ns).UTC(), n
}

// fields splits `k=v k="quoted v" k=HEX` pairs. The kernel writes a
// value in hex, unquoted, when it contains a space, a quote or a control
// character (audit_log_untrustedstring); such values are decoded.
func fields(s string) map[string]string {
	kv := map[string]string{}
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			break
		}
		key := s[:eq]
		if strings.ContainsAny(key, " \t\"") {
			// Not a key: skip one word and go on.
			sp := strings.IndexAny(s, " \t")
			if sp < 0 {
				break
			}
			s = s[sp:]
			continue
		}
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				val, s = s[1:], ""
			} else {
				val, s = s[1:1+end], s[2+end:]
			}
		} else {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
			val = unhex(val)
		}
		if _, dup := kv[key]; !dup {
			kv[key] = val
		}
	}
	return kv
}

// unhex decodes an unquoted value that is hex of printable text; other
// values (numbers such as pid=1234 included) are returned as they are.
func unhex(v string) string {
	if len(v) < 4 || len(v)%2 != 0 {
		return v
	}
	b, err := hex.DecodeString(v)
	if err != nil {
		return v
	}
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return v
		}
	}
	return string(b)
}
