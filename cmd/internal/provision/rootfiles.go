package provision

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// checkRoot checks the files for root services present in files.
func checkRoot(c Config, files map[string][]byte, r *Report) {
	if b, ok := files[BundleAuthorizedKeys]; ok {
		keys, err := ParseAuthorizedKeys(BundleAuthorizedKeys, b)
		if err != nil {
			r.problems(BundleAuthorizedKeys, err)
		} else {
			var ks []string
			for _, k := range keys {
				ks = append(ks, k.String())
			}
			r.ok(BundleAuthorizedKeys, "%d SSH key%s: %s", len(keys), plural(len(keys), "", "s"), strings.Join(ks, "; "))
		}
	}
	if b, ok := files[BundleNftables]; ok {
		stmts, err := ParseSiteNft(BundleNftables, b)
		if err != nil {
			r.problems(BundleNftables, err)
		} else if err := nftCheck(c, b); err != nil {
			r.problem(BundleNftables, "%v", err)
		} else {
			r.ok(BundleNftables, "%d statement%s, accepted by `nft -c` after %s", len(stmts), plural(len(stmts), "", "s"), c.Ruleset)
		}
	}
	if b, ok := files[BundleModules]; ok {
		mods, err := ParseModules(BundleModules, b)
		if err != nil {
			r.problems(BundleModules, err)
		} else {
			var ms []string
			for _, m := range mods {
				ms = append(ms, strings.Join(append([]string{m.Name}, m.Params...), " "))
			}
			r.ok(BundleModules, "load %s", strings.Join(ms, "; "))
		}
	}
}

// AuthorizedKey is one accepted line of an authorized_keys file.
type AuthorizedKey struct {
	Type        string // key type, e.g. ssh-ed25519
	Bits        int    // RSA modulus size, 0 for other types
	Fingerprint string // SHA256:... as ssh-keygen -l prints it
	Comment     string
}

// String is the key as an operator recognises it.
func (k AuthorizedKey) String() string {
	s := k.Type
	if k.Bits > 0 {
		s += fmt.Sprintf(" (%d bits)", k.Bits)
	}
	s += " " + k.Fingerprint
	if k.Comment != "" {
		s += " " + k.Comment
	}
	return s
}

// minRSABits is the smallest RSA key accepted (NIST SP 800-57: 128-bit
// security).
const minRSABits = 3072

// ParseAuthorizedKeys reads an OpenSSH authorized_keys file: every line
// that is not blank or a # comment must be one public key (options
// allowed). DSA keys and RSA keys under 3072 bits are refused, and at
// least one key is required: an empty file would lock the administrator
// out. Every bad line is reported, joined in the error, each naming the
// file and line.
func ParseAuthorizedKeys(name string, b []byte) ([]AuthorizedKey, error) {
	var keys []AuthorizedKey
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pub, comment, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil || len(bytes.TrimSpace(rest)) > 0 {
			errs = append(errs, fmt.Errorf("%s:%d: not an OpenSSH public key line (want [options] TYPE BASE64 [comment], as in ~/.ssh/id_ed25519.pub)", name, n))
			continue
		}
		k := AuthorizedKey{Type: pub.Type(), Fingerprint: ssh.FingerprintSHA256(pub), Comment: comment}
		base := pub
		if cert, ok := pub.(*ssh.Certificate); ok {
			base = cert.Key
		}
		switch base.Type() {
		case ssh.KeyAlgoDSA:
			errs = append(errs, fmt.Errorf("%s:%d: DSA key %s refused (broken, and disabled in OpenSSH): use ssh-keygen -t ed25519", name, n, k.Fingerprint))
			continue
		case ssh.KeyAlgoRSA:
			cpk, ok := base.(ssh.CryptoPublicKey)
			rk, ok2 := cpk.CryptoPublicKey().(*rsa.PublicKey)
			if !ok || !ok2 {
				errs = append(errs, fmt.Errorf("%s:%d: unreadable RSA key", name, n))
				continue
			}
			k.Bits = rk.N.BitLen()
			if k.Bits < minRSABits {
				errs = append(errs, fmt.Errorf("%s:%d: RSA key %s has %d bits, want at least %d: use ssh-keygen -t ed25519", name, n, k.Fingerprint, k.Bits, minRSABits))
				continue
			}
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no key: list at least one administrator's public key, or nobody can log in", name)
	}
	return keys, nil
}

// PPSModules are the kernel modules a modules.conf may load: the PPS
// core, its line-discipline, GPIO and parallel-port clients, and the
// parallel-port drivers they need. Nothing else belongs in a time
// appliance's kernel by the site's choice.
var PPSModules = map[string]bool{
	"pps_core": true, "pps_ldisc": true, "pps_gpio": true, "pps_parport": true,
	"parport": true, "parport_pc": true,
}

// Module is one line of modules.conf.
type Module struct {
	Name   string
	Params []string // key=value
}

// ParseModules reads modules.conf: "NAME [key=value ...]" per line, #
// comments. Names come from PPSModules only; keys are [A-Za-z0-9_] and
// values [A-Za-z0-9_.,x-]: timenode-pps-modules.service passes them to
// modprobe through the shell unquoted, so nothing may expand there. Every
// bad line is reported, each naming the file and line.
func ParseModules(name string, b []byte) ([]Module, error) {
	var mods []Module
	var errs []error
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		m := Module{Name: fields[0]}
		if !PPSModules[m.Name] {
			errs = append(errs, fmt.Errorf("%s:%d: %q is not a PPS or parallel-port module (allowed: %s)", name, n, m.Name, strings.Join(knownNames(PPSModules), ", ")))
			continue
		}
		if seen[m.Name] {
			errs = append(errs, fmt.Errorf("%s:%d: %s listed twice", name, n, m.Name))
			continue
		}
		seen[m.Name] = true
		ok := true
		for _, p := range fields[1:] {
			k, v, found := strings.Cut(p, "=")
			if !found || !allOf(k, isParamKey) || !allOf(v, isParamValue) {
				errs = append(errs, fmt.Errorf("%s:%d: %s: parameter %q: want key=value of letters, digits and _ (value also . , -), e.g. io=0x378", name, n, m.Name, p))
				ok = false
				break
			}
			m.Params = append(m.Params, p)
		}
		if ok {
			mods = append(mods, m)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return mods, nil
}

func isParamKey(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_'
}

func isParamValue(r rune) bool { return isParamKey(r) || r == '.' || r == ',' || r == '-' }

// allOf reports whether s is not empty and every rune passes ok.
func allOf(s string, ok func(rune) bool) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !ok(r) {
			return false
		}
	}
	return true
}

// siteNftVerbs are the statements a site.nft may hold: it fills the
// sets of table inet timenode and touches nothing else.
var siteNftVerbs = [][2]string{{"flush", "set"}, {"add", "element"}, {"delete", "element"}}

// ParseSiteNft reads a site.nft and returns its statements, one line
// each. Only "flush set inet timenode SET" and "add|delete element inet
// timenode SET { ... }" are allowed (over several lines or separated by
// ";"), with # comments; the characters are those of addresses, prefixes
// and ranges, so no include, define, quoted string or other table can
// slip in before nft sees the file. Every bad statement is reported,
// each naming the file and line.
func ParseSiteNft(name string, b []byte) ([]string, error) {
	var stmts []string
	var errs []error
	var cur strings.Builder
	start, depth := 0, 0
	end := func(n int) {
		if s := strings.TrimSpace(cur.String()); s != "" {
			if err := checkNftStatement(s); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %v", name, start, err))
			} else {
				stmts = append(stmts, strings.Join(strings.Fields(s), " "))
			}
		}
		cur.Reset()
		start = n
	}
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		n := i + 1
		if cur.Len() == 0 {
			start = n
		}
		line, _, _ = strings.Cut(line, "#")
		for _, r := range line {
			switch {
			case r == '{':
				depth++
			case r == '}':
				depth--
				if depth < 0 {
					return nil, fmt.Errorf("%s:%d: } without {", name, n)
				}
			case r == ';' && depth == 0:
				end(n)
				continue
			case r == '\r' || r == '\t':
				r = ' '
			case !isNftChar(r):
				errs = append(errs, fmt.Errorf("%s:%d: %q: a site file holds set elements only (addresses, prefixes, ranges)", name, n, r))
				return nil, errors.Join(errs...)
			}
			cur.WriteRune(r)
		}
		if depth == 0 {
			end(n + 1)
		} else {
			cur.WriteByte(' ')
		}
	}
	if depth > 0 {
		errs = append(errs, fmt.Errorf("%s:%d: { not closed", name, start))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return stmts, nil
}

func isNftChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" .:/{},-_", r)
}

func checkNftStatement(s string) error {
	f := strings.Fields(strings.NewReplacer("{", " { ", "}", " } ").Replace(s))
	verb := -1
	for i, v := range siteNftVerbs {
		if len(f) >= 2 && f[0] == v[0] && f[1] == v[1] {
			verb = i
		}
	}
	want := "want `flush set inet timenode SET` or `add element inet timenode SET { ... }` (or delete element)"
	if verb < 0 || len(f) < 5 || f[2] != "inet" || f[3] != "timenode" {
		return fmt.Errorf("%q: %s", s, want)
	}
	if !allOf(f[4], isParamKey) {
		return fmt.Errorf("%q: set name %q", s, f[4])
	}
	if verb == 0 && len(f) != 5 || verb > 0 && (len(f) < 7 || f[5] != "{" || f[len(f)-1] != "}") {
		return fmt.Errorf("%q: %s", s, want)
	}
	return nil
}

// nftCheck runs `nft -c` on the node's ruleset (its include lines
// commented out: they would read the installed site file, or nothing)
// followed by siteNft, and returns nft's message if it refuses them.
// File names in the message are the ruleset's and "site.nft".
func nftCheck(c Config, siteNft []byte) error {
	rules, err := os.ReadFile(c.Ruleset)
	if err != nil {
		return fmt.Errorf("cannot check it: the node's ruleset: %v", err)
	}
	argv := c.Nft
	if len(argv) == 0 {
		p, err := exec.LookPath("nft")
		if err != nil {
			if p, err = exec.LookPath("/usr/sbin/nft"); err != nil {
				return errors.New("cannot check it: nft not found: install the Debian package nftables")
			}
		}
		argv = []string{p}
	}
	dir, err := os.MkdirTemp("", "timenode-nft-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var kept []string
	for _, l := range strings.Split(string(rules), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "include") {
			l = "# " + l // keeps nft's line numbers the file's
		}
		kept = append(kept, l)
	}
	rulesetPath, sitePath, mainPath := filepath.Join(dir, "ruleset.nft"), filepath.Join(dir, BundleNftables), filepath.Join(dir, "check.nft")
	main := fmt.Sprintf("include %q\ninclude %q\n", rulesetPath, sitePath)
	for p, b := range map[string][]byte{rulesetPath: []byte(strings.Join(kept, "\n")), sitePath: siteNft, mainPath: []byte(main)} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], append(argv[1:], "-c", "-f", mainPath)...).CombinedOutput()
	if err == nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "In file included from "+mainPath) { // our wrapper, not the operator's file
			lines = append(lines, l)
		}
	}
	msg := strings.NewReplacer(rulesetPath, c.Ruleset, sitePath, BundleNftables).Replace(strings.Join(lines, "\n"))
	if msg == "" {
		msg = err.Error()
	}
	return fmt.Errorf("nft -c refused it:\n%s", msg)
}
