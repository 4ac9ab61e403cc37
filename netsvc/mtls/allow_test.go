package mtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/mtls/mtlstest"
)

// names is what a test certificate carries.
type names struct {
	cn     string
	dns    []string
	uris   []string
	ips    []string
	emails []string
}

// makeCert returns a parsed certificate carrying n (self-signed: only the
// names matter here).
func makeCert(t *testing.T, n names) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: n.cn},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0), DNSNames: n.dns, EmailAddresses: n.emails}
	for _, s := range n.uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	for _, s := range n.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(s))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAllowListMatching(t *testing.T) {
	const gw, kms = "gateway.security.svc", "spiffe://aunsorm/ns/security/sa/kms"
	tests := []struct {
		name  string
		allow []string
		cert  names
		want  bool
	}{
		{"DNS SAN", []string{gw}, names{dns: []string{gw}}, true},
		{"DNS SAN: case and final dot do not matter", []string{gw}, names{dns: []string{"Gateway.Security.SVC."}}, true},
		{"one of several DNS SANs", []string{gw}, names{dns: []string{"a.svc", gw}}, true},
		{"CN beside a DNS SAN is not an identity", []string{gw}, names{cn: gw, dns: []string{"intruder.security.svc"}}, false},
		{"CN beside only an email SAN is not an identity", []string{gw}, names{cn: gw, emails: []string{"ops@aunsorm"}}, false},
		{"CN of a certificate without SANs", []string{gw}, names{cn: gw}, true},
		{"URI SAN spelled like the DNS entry", []string{gw}, names{uris: []string{gw}}, false},
		{"URI SAN with the DNS name as host", []string{gw}, names{uris: []string{"https://" + gw}}, false},
		{"wildcard DNS SAN for a specific entry", []string{gw}, names{dns: []string{"*.security.svc"}}, false},
		{"wildcard entry for the same wildcard SAN", []string{"*.security.svc"}, names{dns: []string{"*.security.svc"}}, true},
		{"URI SAN", []string{kms}, names{uris: []string{kms}}, true},
		{"URI SAN: scheme and host case do not matter", []string{kms}, names{uris: []string{"SPIFFE://AUNSORM/ns/security/sa/kms"}}, true},
		{"URI SAN: path case does", []string{kms}, names{uris: []string{"spiffe://aunsorm/NS/security/sa/kms"}}, false},
		{"URI SAN: a longer path is another identity", []string{kms}, names{uris: []string{kms + "/x"}}, false},
		{"DNS SAN for a URI entry", []string{kms}, names{dns: []string{"aunsorm"}}, false},
		{"CN for a URI entry, no SANs", []string{kms}, names{cn: kms}, false},
		{"IP SAN", []string{"10.80.0.7"}, names{ips: []string{"10.80.0.7"}}, true},
		{"IPv4-mapped IPv6 entry", []string{"::ffff:10.80.0.7"}, names{ips: []string{"10.80.0.7"}}, true},
		{"DNS SAN spelled like the IP entry", []string{"10.80.0.7"}, names{dns: []string{"10.80.0.7"}}, false},
		{"IP SAN for a DNS entry", []string{gw}, names{ips: []string{"10.80.0.7"}}, false},
		{"entry with a colon but no scheme matches nothing", []string{":gw"}, names{cn: ":gw", dns: []string{"gw"}}, false},
		{"second entry of the list", []string{gw, kms}, names{uris: []string{kms}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := makeCert(t, tt.cert)
			if got := allowedBy(c, parseAllowList(tt.allow)); got != tt.want {
				t.Errorf("allowed %v, want %v (certificate names %v)", got, tt.want, Identities(c))
			}
		})
	}
}

func TestIdentities(t *testing.T) {
	tests := []struct {
		name string
		cert names
		want []string
	}{
		{"SANs of every type, CN left out", names{cn: "gw", dns: []string{"gw.svc"}, uris: []string{"spiffe://a/b"}, ips: []string{"10.0.0.1"}, emails: []string{"a@b"}},
			[]string{"DNS:gw.svc", "URI:spiffe://a/b", "IP:10.0.0.1", "email:a@b"}},
		{"no SANs: the CN", names{cn: "gw.svc"}, []string{"CN:gw.svc"}},
		{"nothing", names{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Identities(makeCert(t, tt.cert)); !slices.Equal(got, tt.want) {
				t.Errorf("Identities = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestHandshakeIgnoresCNBesideSANs: a certificate from the service CA
// whose CN is on the allow-list but whose SAN is not is refused at the
// handshake.
func TestHandshakeIgnoresCNBesideSANs(t *testing.T) {
	w := newWorld(t)
	m, err := Load(w.files, w.now)
	if err != nil {
		t.Fatal(err)
	}
	mgr := NewManager(m, Policy{Allowed: []string{"gateway.security.svc"}, RequireClientCert: true})
	addr := serve(t, mgr)
	c := w.client("gateway.security.svc", []string{"intruder.security.svc"}, w.ca, w.now.Add(-time.Hour), w.now.Add(time.Hour)).TLS()
	if _, err := dial(addr, mtlstest.Pool(w.ca), &c, nil); err == nil {
		t.Fatal("a certificate allowed only by its CN was accepted beside a SAN")
	}
	if n := mgr.Failures()[ReasonNotAllowed]; n != 1 {
		t.Errorf("not_allowed failures %d, want 1", n)
	}
	good := w.client("anything", []string{"gateway.security.svc"}, w.ca, w.now.Add(-time.Hour), w.now.Add(time.Hour)).TLS()
	if _, err := dial(addr, mtlstest.Pool(w.ca), &good, nil); err != nil {
		t.Fatalf("the allowed DNS SAN was refused: %v", err)
	}
}
