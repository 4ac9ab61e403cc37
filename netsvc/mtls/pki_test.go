package mtls

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/mtls/mtlstest"
)

// world is the usual setup: service CA, another CA, a server certificate.
type world struct {
	p           *mtlstest.PKI
	now         time.Time
	ca, otherCA *mtlstest.Issued
	server      *mtlstest.Issued
	files       Files
	caPath      string
}

func newWorld(t *testing.T) *world {
	w := &world{p: mtlstest.New(t), now: time.Now()}
	year := w.now.Add(365 * 24 * time.Hour)
	w.ca = w.p.CA("service CA", w.now.Add(-time.Hour), year)
	w.otherCA = w.p.CA("other CA", w.now.Add(-time.Hour), year)
	w.server = w.p.Leaf("timenode", []string{"localhost", "127.0.0.1"}, w.ca, x509.ExtKeyUsageServerAuth, w.now.Add(-time.Hour), w.now.Add(60*24*time.Hour))
	w.caPath, _ = w.p.Write("ca", w.ca)
	cert, key := w.p.Write("server", w.server)
	w.files = Files{Cert: cert, Key: key, ClientCA: w.caPath}
	return w
}

func (w *world) client(cn string, dns []string, ca *mtlstest.Issued, notBefore, notAfter time.Time) *mtlstest.Issued {
	return w.p.Leaf(cn, dns, ca, x509.ExtKeyUsageClientAuth, notBefore, notAfter)
}

func (w *world) serverCert(cn string, notBefore, notAfter time.Time) *mtlstest.Issued {
	return w.p.Leaf(cn, []string{"localhost"}, w.ca, x509.ExtKeyUsageServerAuth, notBefore, notAfter)
}
