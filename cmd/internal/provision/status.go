package provision

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aunsorm/timenode/netsvc/certaudit"
	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer"
)

// Status is what a node holds: its own keys and requests, its current
// site material checked as the daemon would load it, and the files for
// root services.
type Status struct {
	Provisioned bool
	Generation  string    // current generation, "" if not provisioned
	Installed   time.Time // when it was made (from its name); zero if unknown
	Previous    string    // the generation a rollback returns to
	Node        []Finding // keys, requests, generations
	Site        *Report   // the current generation checked; nil if not provisioned
	Root        []Finding // RootDir's files
}

// NodeStatus reports on the node at c.Now. It fails only when the state
// directory cannot be read at all; an unprovisioned node is a status.
func NodeStatus(c Config) (*Status, error) {
	c = c.withDefaults()
	st := &Status{}
	uid, gid, err := owner(c.State)
	if errors.Is(err, fs.ErrNotExist) {
		st.Node = []Finding{{c.State, "missing: the node has not been through its first boot (timenode-firstboot)"}}
		st.Root = rootStatus(c)
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	add := func(file, format string, args ...any) {
		st.Node = append(st.Node, Finding{file, fmt.Sprintf(format, args...)})
	}
	add(c.State, "state directory, owned by %d:%d", uid, gid)
	keys := filepath.Join(c.State, site.KeysDir)
	for _, k := range []struct{ prefix, what string }{{"", "current signing key"}, {signer.NextPrefix, "next signing key"}} {
		ed := filepath.Join(keys, k.prefix+signer.Ed25519KeyFile)
		ml := filepath.Join(keys, k.prefix+signer.MLDSA65KeyFile)
		name := filepath.Join(site.KeysDir, k.prefix+"signing-*.pem")
		if !exists(ed) && !exists(ml) {
			if k.prefix == "" {
				add(name, "missing: the node has no signing key (timenode-firstboot makes it)")
			} else {
				add(name, "none (no rotation in progress)")
			}
			continue
		}
		kp, err := loadPair(ed, ml, keyPolicy(uid))
		if err != nil {
			add(name, "%s: %v", k.what, err)
			continue
		}
		add(name, "%s %s", k.what, kp.ID())
		kp.Close()
	}
	if exists(filepath.Join(keys, site.TLSKey)) {
		add(filepath.Join(site.KeysDir, site.TLSKey), "TLS server key present")
	} else {
		add(filepath.Join(site.KeysDir, site.TLSKey), "missing: the node has no TLS key (timenode-firstboot makes it)")
	}
	for _, kind := range CSRKinds {
		name := filepath.Join(site.TLSDir, csrFiles[kind])
		b, err := os.ReadFile(filepath.Join(c.State, name))
		if errors.Is(err, fs.ErrNotExist) {
			add(name, "none")
			continue
		}
		csr, err := parseCSR(name, b, err)
		if err != nil {
			add(name, "%v", err)
			continue
		}
		add(name, "request for %q%s (`timenodectl provision csr %s`)", csr.Subject.CommonName, prefixed(", names ", strings.Join(csrNames(csr), " ")), kind)
	}
	cur, err := current(c.State)
	switch {
	case err != nil:
		add(site.Link, "%v", err)
	case cur == "":
		add(site.Link, "not provisioned: no site material (install a bundle with `timenodectl provision install`)")
	default:
		st.Provisioned, st.Generation = true, cur
		st.Installed, _ = genTime(cur)
		gens, _ := generations(c.State)
		for _, g := range gens {
			if g != cur {
				st.Previous = g
			}
		}
		when := "unknown time"
		if !st.Installed.IsZero() {
			when = st.Installed.Format(time.RFC3339) + " (" + days(c.Now.Sub(st.Installed)) + " ago)"
		}
		add(site.Link, "generation %s, made %s; previous (for rollback): %s", cur, when, orNone(st.Previous))
		dir := filepath.Join(c.State, site.GensDir, cur)
		r := &Report{Dir: dir}
		files, err := readFiles(dir, siteKnown(), func(fs.DirEntry) bool { return false }, r)
		if err != nil {
			r.problem(dir, "%v", err)
		} else {
			checkSite(c, files, r)
			if _, ok := files[site.NextAttestationCert]; !ok {
				r.ok(site.NextAttestationCert, "none")
			}
		}
		st.Site = r
	}
	st.Root = rootStatus(c)
	return st, nil
}

// rootStatus describes RootDir's files without running nft.
func rootStatus(c Config) []Finding {
	var out []Finding
	for _, f := range rootFiles {
		path := filepath.Join(c.Root, f.Root)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			out = append(out, Finding{path, "none"})
			continue
		}
		if err != nil {
			out = append(out, Finding{path, err.Error()})
			continue
		}
		var msg string
		switch f.Bundle {
		case BundleAuthorizedKeys:
			keys, perr := ParseAuthorizedKeys(path, b)
			err, msg = perr, fmt.Sprintf("%d SSH key%s", len(keys), plural(len(keys), "", "s"))
		case BundleNftables:
			stmts, perr := ParseSiteNft(path, b)
			err, msg = perr, fmt.Sprintf("%d statement%s", len(stmts), plural(len(stmts), "", "s"))
		case BundleModules:
			mods, perr := ParseModules(path, b)
			var names []string
			for _, m := range mods {
				names = append(names, m.Name)
			}
			err, msg = perr, "modules "+orNone(strings.Join(names, ", "))
		}
		if err != nil {
			msg = strings.ReplaceAll(err.Error(), "\n", "; ")
		}
		out = append(out, Finding{path, msg})
	}
	return out
}

// CSRKinds are the requests `provision csr` prints, in status order.
var CSRKinds = []string{"tls", "attestation", "next-attestation"}

var csrFiles = map[string]string{"tls": "node.csr", "attestation": "attestation.csr", "next-attestation": "next-attestation.csr"}

// CSR returns the node's certificate request of the given kind (one of
// CSRKinds) from S/tls, checked to be a well-formed, self-signed request.
func CSR(c Config, kind string) ([]byte, error) {
	c = c.withDefaults()
	file, ok := csrFiles[kind]
	if !ok {
		return nil, fmt.Errorf("unknown request %q: want one of %s", kind, strings.Join(CSRKinds, ", "))
	}
	path := filepath.Join(c.State, site.TLSDir, file)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		switch kind {
		case "next-attestation":
			keys := filepath.Join(c.State, site.KeysDir)
			return nil, fmt.Errorf("%s: none: make the next key and its request with `timenodectl keys generate --dir %s --next` and `timenodectl keys csr --dir %s --next --cn AUTHORITY --out %s`", path, keys, keys, path)
		default:
			return nil, fmt.Errorf("%s: none: timenode-firstboot makes it at the first boot (`systemctl status timenode-firstboot`)", path)
		}
	}
	if _, err := parseCSR(path, b, err); err != nil {
		return nil, err
	}
	return b, nil
}

func parseCSR(name string, b []byte, readErr error) (*x509.CertificateRequest, error) {
	if readErr != nil {
		return nil, readErr
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%s: no CERTIFICATE REQUEST PEM block", name)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%s: signature: %w", name, err)
	}
	return csr, nil
}

func csrNames(csr *x509.CertificateRequest) []string {
	return certaudit.SANs(&x509.Certificate{DNSNames: csr.DNSNames, IPAddresses: csr.IPAddresses, URIs: csr.URIs, EmailAddresses: csr.EmailAddresses})
}
