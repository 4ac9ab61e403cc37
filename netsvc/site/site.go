// Package site is the contract between the daemon and the operator's tool
// for a provisioned appliance: where the site's material lives in the
// state directory, how one consistent generation of it is found, and the
// syntax of the allow-list and settings files.
//
// The state directory S (/var/lib/timenode, systemd's StateDirectory of
// the daemon's dynamic user) holds:
//
//	S/keys/                  made on the node, never leave it
//	    signing-ed25519.pem signing-mldsa65.pem   current signing key
//	    next-signing-*.pem                         next key of a rotation
//	    tls.key                                    TLS server key
//	S/tls/*.csr              requests made from those keys
//	S/site -> .site/GEN      the operator's validated bundle, swapped as one
//	    tls.crt server-ca.pem client-ca.pem attestation-ca.pem
//	    attestation-cert.pem [next-attestation-cert.pem] allow.txt site.env
//	    [metrics-ca.pem] [leap-seconds.list] [witness-ca.pem]
//
// An optional leap-seconds.list (the IETF/IERS format, with its #h hash)
// replaces the image's tzdata list (DefaultLeapSeconds) for the daemon:
// the image is read-only, so a fresh list travels with the site material.
// An optional witness-ca.pem holds the CA(s) that vouch for the site's NTS
// witnesses (--witness-nts) when they serve under a private CA; without it
// they are trusted through the image's system roots.
//
// Files consumed by root-owned services (sshd, nftables, module loading)
// live in RootDir instead, outside the daemon's private directory.
package site

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aunsorm/timenode/timing/integrity"
)

// Names in the state directory.
const (
	KeysDir         = "keys"
	TLSDir          = "tls"
	TLSKey          = "tls.key"
	Link            = "site"  // S/site, a relative symlink to one generation
	GensDir         = ".site" // S/.site/GEN: generations of site material
	DefaultStateDir = "/var/lib/timenode"
)

// Files of one generation of site material (and of a provisioning bundle).
const (
	TLSCert             = "tls.crt"              // server certificate chain, leaf first
	ServerCA            = "server-ca.pem"        // CA(s) that issued tls.crt
	ClientCA            = "client-ca.pem"        // CA(s) of the mTLS clients
	AttestationCA       = "attestation-ca.pem"   // production CA of the signing keys
	AttestationCert     = "attestation-cert.pem" // certifies keys/signing-*
	NextAttestationCert = "next-attestation-cert.pem"
	AllowList           = "allow.txt"         // client identities allowed on HTTPS
	MetricsCA           = "metrics-ca.pem"    // CA(s) of the Prometheus scrapers; optional: /metrics is mTLS when present
	Env                 = "site.env"          // authority id and site settings
	LeapSeconds         = "leap-seconds.list" // optional: replaces DefaultLeapSeconds
	WitnessCA           = "witness-ca.pem"    // optional: CA(s) of the NTS witnesses, replacing the system roots
)

// DefaultLeapSeconds is the image's leap-seconds.list (Debian's tzdata),
// used when the current generation carries none.
const DefaultLeapSeconds = "/usr/share/zoneinfo/leap-seconds.list"

// Files in RootDir, read by root-owned services.
const (
	DefaultRootDir = "/var/lib/timenode-site"
	AuthorizedKeys = "authorized_keys" // the admin user's SSH keys
	Nftables       = "nftables.nft"    // the site's segments (sets of table inet timenode)
	Modules        = "modules.conf"    // kernel modules of the board's PPS source
)

// Resolve returns the directory of the current generation of site
// material in stateDir, resolving the S/site link once: everything one
// load reads comes from that one directory, so a swap during the load
// cannot mix two generations. The target must lie inside S/.site.
func Resolve(stateDir string) (string, error) {
	link := filepath.Join(stateDir, Link)
	target, err := os.Readlink(link)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("site: %s: not provisioned (install a bundle with `timenodectl provision install`): %w", link, err)
		}
		return "", fmt.Errorf("site: %s: %w", link, err)
	}
	if filepath.IsAbs(target) {
		return "", fmt.Errorf("site: %s points to %s: want a generation under %s", link, target, GensDir)
	}
	dir := filepath.Join(stateDir, target)
	if filepath.Dir(dir) != filepath.Join(stateDir, GensDir) {
		return "", fmt.Errorf("site: %s points to %s, outside %s", link, target, GensDir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("site: %s: %w", link, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("site: %s: %s is not a directory", link, dir)
	}
	return dir, nil
}

// maxIdentity bounds one allow-list entry (a DNS name is at most 253
// bytes; URIs of SPIFFE ids stay well below).
const maxIdentity = 512

// ParseAllowList reads client identities, one per line (DNS or URI SAN, or
// a certificate's common name); blank lines and lines starting with # are
// skipped. An entry with white space, a comma or a control character is an
// error naming the file and line; an empty list is an error too: the
// appliance never admits "any certificate from the CA" by omission.
func ParseAllowList(name string, b []byte) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) > maxIdentity {
			return nil, fmt.Errorf("%s:%d: identity longer than %d bytes", name, n, maxIdentity)
		}
		if !validIdentity(line) {
			return nil, fmt.Errorf("%s:%d: %q: an identity has no spaces, commas or control characters (one per line)", name, n, line)
		}
		if seen[line] {
			return nil, fmt.Errorf("%s:%d: %q listed twice", name, n, line)
		}
		seen[line] = true
		ids = append(ids, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: no client identity: list at least one (DNS/URI SAN or CN of an allowed client)", name)
	}
	return ids, nil
}

// validIdentity refuses what can never match a certificate's name and
// would silently lock a client out: any Unicode space (a no-break space
// from a word processor), control or format character (a byte order mark,
// a zero-width space), a comma, and bytes that are not UTF-8.
func validIdentity(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == ',' || unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// EnvKeys are the settings site.env may carry, each with its check.
var EnvKeys = map[string]func(string) error{
	"NTP_AUTHORITY_ID":      checkAuthorityID,
	"NTP_STRATUM":           checkIntRange(1, 15),
	"NTP_REFERENCE_ADDRESS": checkAddr,
	"REFRESH_INTERVAL_SECS": checkIntRange(1, 3600),
	"TIMENODED_OPTS":        checkOpts,
}

// BoardFlags are the daemon flags site.env's TIMENODED_OPTS may set: the
// board's devices and the serving policy. Listen addresses, key and
// certificate paths and the mode are the image's, not the site's.
var BoardFlags = map[string]bool{
	"serial": true, "baud": true, "pps": true, "pps-gpio": true, "led-gpio": true, "reset-gpio": true,
	"nmea-only-stratum": true, "nmea-only-max-bound": true, "max-holdover-bound": true, "lock-threshold": true,
	"require-client-cert": true, "agent-check": true, "v": true,
	// GNSS integrity: the site's antenna, witnesses and whether to enforce,
	// and the board's oscillator class the PPS check judges by. A private
	// CA of the NTS witnesses is a file of the bundle (WitnessCA), not a
	// path here (bundleFiles).
	"integrity": true, "antenna-position": true, "witness-roughtime": true, "witness-nts": true,
	"witness-interval": true, "oscillator": true,
}

// ParseEnv reads site.env: KEY=VALUE lines as systemd's EnvironmentFile=
// reads them, restricted to EnvKeys with their checks, values unquoted or
// in double quotes without escapes. NTP_AUTHORITY_ID is required.
func ParseEnv(name string, b []byte) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE", name, n)
		}
		k = strings.TrimSpace(k)
		check, known := EnvKeys[k]
		if !known {
			return nil, fmt.Errorf("%s:%d: %s is not a site setting (known: %s)", name, n, k, strings.Join(envKeyNames(), ", "))
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if strings.ContainsAny(v, "\"'\\$`") {
			return nil, fmt.Errorf("%s:%d: %s: quotes, backslashes and $ are not allowed in a value", name, n, k)
		}
		if _, dup := env[k]; dup {
			return nil, fmt.Errorf("%s:%d: %s set twice", name, n, k)
		}
		if err := check(v); err != nil {
			return nil, fmt.Errorf("%s:%d: %s=%q: %w", name, n, k, v, err)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if env["NTP_AUTHORITY_ID"] == "" {
		return nil, fmt.Errorf("%s: NTP_AUTHORITY_ID is required (the name attestations are issued under)", name)
	}
	return env, nil
}

func envKeyNames() []string {
	names := make([]string, 0, len(EnvKeys))
	for k := range EnvKeys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func checkAuthorityID(v string) error {
	if v == "" || len(v) > 253 {
		return errors.New("want a DNS name of 1 to 253 characters")
	}
	for _, label := range strings.Split(v, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("want a DNS name: empty or over-long label")
		}
		for i, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(label)-1
			if !ok {
				return fmt.Errorf("want a DNS name: %q in label %q", r, label)
			}
		}
	}
	return nil
}

func checkIntRange(lo, hi int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a whole number from %d to %d", lo, hi)
		}
		return nil
	}
}

func checkAddr(v string) error {
	if _, err := netip.ParseAddr(v); err != nil {
		return errors.New("want an IPv4 or IPv6 address")
	}
	return nil
}

// bundleFiles are the daemon's file flags whose file a site provides in
// its bundle instead: a path in site.env would point outside the
// generation that provision checked and a reload rereads.
var bundleFiles = map[string]string{
	"witness-nts-ca":    WitnessCA,
	"metrics-client-ca": MetricsCA,
	"leap-seconds":      LeapSeconds,
}

// OptsSet says whether the options opts (TIMENODED_OPTS) set the flag
// name; options checkOpts refuses set nothing.
func OptsSet(opts, name string) bool {
	set, err := boardOpts(opts)
	return err == nil && slices.ContainsFunc(set, func(o boardOpt) bool { return o.name == name })
}

// boardBoolFlags are the board flags of type bool: Go's flag package never
// takes the next word as their value.
var boardBoolFlags = map[string]bool{"require-client-cert": true, "v": true}

// boardFlagValues check the values of the board flags that are not plain
// strings, as timenoded's parseConfig would refuse them: a site.env that
// passes here must not stop the daemon at start.
var boardFlagValues = map[string]func(string) error{
	"require-client-cert": checkBool,
	"v":                   checkBool,
	"baud":                checkIntRange(1, 4000000), // what a UART can run at
	"nmea-only-stratum":   checkIntRange(0, 15),
	"nmea-only-max-bound": checkDuration(0, 0),
	"max-holdover-bound":  checkDuration(0, 0),
	"lock-threshold":      checkDuration(time.Nanosecond, 10*time.Millisecond),
	"oscillator": func(v string) error {
		_, err := integrity.ParseClass(v)
		return err
	},
	"witness-nts": CheckHostPort,
}

// CheckHostPort checks a server address: HOST:PORT with a host and a
// port from 1 to 65535 (the daemon's --witness-nts, here and at start).
func CheckHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %v", err)
	}
	if host == "" {
		return errors.New("want HOST:PORT: no host")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("want HOST:PORT: port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// checkOpts accepts the board flags as Go's flag package parses them,
// which is how timenoded reads $TIMENODED_OPTS: "-flag" or "--flag"
// (never more dashes), "--flag=value", and "--flag value" except for bool
// flags, which would leave the value behind as an argument the daemon
// refuses.
func checkOpts(v string) error {
	opts, err := boardOpts(v)
	if err != nil {
		return err
	}
	for _, o := range opts {
		if check := boardFlagValues[o.name]; o.hasValue && check != nil {
			if err := check(o.value); err != nil {
				return fmt.Errorf("--%s=%s: %w", o.name, o.value, err)
			}
		}
	}
	return nil
}

// boardOpt is one flag of TIMENODED_OPTS with its value.
type boardOpt struct {
	name, value string
	hasValue    bool
}

// boardOpts splits TIMENODED_OPTS into board flags as Go's flag package
// reads them (checkOpts), refusing what is not a board flag.
func boardOpts(v string) ([]boardOpt, error) {
	var opts []boardOpt
	fields := strings.Fields(v)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if !strings.HasPrefix(f, "-") {
			return nil, fmt.Errorf("%q: want --flag or --flag=value", f)
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(f, "-"), "-"), "=")
		if name == "" || strings.HasPrefix(name, "-") {
			return nil, fmt.Errorf("%q: want --flag or --flag=value", f)
		}
		if file, ok := bundleFiles[name]; ok {
			return nil, fmt.Errorf("--%s is not a board setting: put the file in the bundle as %s", name, file)
		}
		if !BoardFlags[name] {
			return nil, fmt.Errorf("--%s is not a board setting (allowed: %s)", name, strings.Join(boardFlagNames(), ", "))
		}
		if !hasValue && !boardBoolFlags[name] {
			// "--flag value": the flag package takes the next word,
			// whatever it is.
			if i+1 >= len(fields) || strings.HasPrefix(fields[i+1], "-") {
				return nil, fmt.Errorf("--%s needs a value", name)
			}
			i++
			value, hasValue = fields[i], true
		}
		opts = append(opts, boardOpt{name, value, hasValue})
	}
	return opts, nil
}

func checkBool(v string) error {
	if _, err := strconv.ParseBool(v); err != nil {
		return errors.New("want true or false")
	}
	return nil
}

// checkDuration wants a Go duration within [lo, hi]; hi zero means no
// upper bound.
func checkDuration(lo, hi time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || hi > 0 && d > hi {
			if hi > 0 {
				return fmt.Errorf("want a duration from %v to %v (e.g. 50ms)", lo, hi)
			}
			return errors.New("want a duration of at least 0 (e.g. 50ms)")
		}
		return nil
	}
}

func boardFlagNames() []string {
	names := make([]string, 0, len(BoardFlags))
	for k := range BoardFlags {
		names = append(names, "--"+k)
	}
	sort.Strings(names)
	return names
}
