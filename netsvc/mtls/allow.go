package mtls

import (
	"crypto/x509"
	"encoding/asn1"
	"net/netip"
	"net/url"
	"strings"
)

// An allow-list entry names a client the way RFC 9525 (which obsoletes
// RFC 6125) has a verifier name a peer: by a typed reference identifier,
// matched only against presented identifiers of the same type. Its type
// follows from its spelling:
//
//   - an IP address (192.0.2.7, 2001:db8::7) matches an IP SAN;
//   - anything else with a ":" is a URI (spiffe://aunsorm/ns/security/sa/kms)
//     and matches a URI SAN: scheme and host without regard to case, the
//     rest exactly;
//   - the rest is a DNS name (gateway.security.svc) and matches a DNS SAN
//     without regard to case or a final dot. A wildcard SAN matches only
//     the same wildcard entry: a client is one service, not a domain.
//
// A certificate with a subjectAltName extension is named by its SANs
// alone; only one without any (a legacy client) may match a DNS entry by
// its subject CN.

// idKind is the type of an identifier.
type idKind uint8

const (
	kindDNS idKind = iota
	kindURI
	kindIP
)

// allowEntry is one parsed allow-list entry.
type allowEntry struct {
	kind idKind
	dns  string   // kindDNS: lower case, no final dot
	uri  *url.URL // kindURI: nil if the entry is not a URI with a scheme
	ip   netip.Addr
}

func parseAllowEntry(s string) allowEntry {
	if ip, err := netip.ParseAddr(s); err == nil {
		return allowEntry{kind: kindIP, ip: ip.Unmap()}
	}
	if strings.Contains(s, ":") {
		e := allowEntry{kind: kindURI}
		if u, err := url.Parse(s); err == nil && u.Scheme != "" {
			e.uri = u
		}
		return e
	}
	return allowEntry{kind: kindDNS, dns: normDNS(s)}
}

func parseAllowList(list []string) []allowEntry {
	out := make([]allowEntry, len(list))
	for i, s := range list {
		out[i] = parseAllowEntry(s)
	}
	return out
}

func normDNS(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// sameURI compares scheme and host without regard to case, the rest as
// written.
func sameURI(a, b *url.URL) bool {
	if !strings.EqualFold(a.Scheme, b.Scheme) || !strings.EqualFold(a.Host, b.Host) {
		return false
	}
	return a.Opaque == b.Opaque && a.User.String() == b.User.String() && a.EscapedPath() == b.EscapedPath() &&
		a.RawQuery == b.RawQuery && a.ForceQuery == b.ForceQuery && a.EscapedFragment() == b.EscapedFragment()
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// hasSANs reports whether c carries a subjectAltName extension, of any
// name type (an otherName counts: the CN is still not the identity).
func hasSANs(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidSubjectAltName) {
			return true
		}
	}
	return false
}

// matches reports whether the entry names c.
func (e allowEntry) matches(c *x509.Certificate, sans bool) bool {
	switch e.kind {
	case kindIP:
		for _, b := range c.IPAddresses {
			if ip, ok := netip.AddrFromSlice(b); ok && ip.Unmap() == e.ip {
				return true
			}
		}
	case kindURI:
		if e.uri == nil {
			return false
		}
		for _, u := range c.URIs {
			if sameURI(u, e.uri) {
				return true
			}
		}
	case kindDNS:
		for _, d := range c.DNSNames {
			if normDNS(d) == e.dns {
				return true
			}
		}
		if !sans && c.Subject.CommonName != "" {
			return normDNS(c.Subject.CommonName) == e.dns
		}
	}
	return false
}

// allowedBy reports whether any entry names c.
func allowedBy(c *x509.Certificate, entries []allowEntry) bool {
	sans := hasSANs(c)
	for _, e := range entries {
		if e.matches(c, sans) {
			return true
		}
	}
	return false
}

// Identities lists the identifiers an allow-list entry may match, typed
// as in RFC 9525 ("DNS:gateway.security.svc", "URI:spiffe://…",
// "IP:10.80.0.7"): the SANs, or the subject CN ("CN:…") of a
// certificate without any.
func Identities(c *x509.Certificate) []string {
	var ids []string
	for _, d := range c.DNSNames {
		ids = append(ids, "DNS:"+d)
	}
	for _, u := range c.URIs {
		ids = append(ids, "URI:"+u.String())
	}
	for _, ip := range c.IPAddresses {
		ids = append(ids, "IP:"+ip.String())
	}
	for _, m := range c.EmailAddresses {
		ids = append(ids, "email:"+m)
	}
	if !hasSANs(c) && c.Subject.CommonName != "" {
		ids = append(ids, "CN:"+c.Subject.CommonName)
	}
	return ids
}
