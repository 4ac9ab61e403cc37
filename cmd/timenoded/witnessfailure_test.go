package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/nts/ntsclient"
	"github.com/aunsorm/timenode/netsvc/roughtime"
	"github.com/aunsorm/timenode/netsvc/site/sitetest"
)

// TestWitnessFailure classes the errors the witness clients return. The
// network and certificate errors are real ones, made on loopback and by
// crypto/x509; the protocol ones are the clients' sentinels wrapped as
// the clients wrap them.
func TestWitnessFailure(t *testing.T) {
	// A CA certificate for witness.test, valid from 2030-06-01 for a
	// year (less an hour).
	valid := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	cert := sitetest.NewIssuer(t, "witness.test", valid).Cert
	own := x509.NewCertPool()
	own.AddCert(cert)
	// verify is the error crypto/tls returns for cert under opts.
	verify := func(opts x509.VerifyOptions) error {
		if _, err := cert.Verify(opts); err != nil {
			return fmt.Errorf("ntsclient: NTS-KE with witness.test:4460: %w", &tls.CertificateVerificationError{UnverifiedCertificates: []*x509.Certificate{cert}, Err: err})
		}
		t.Fatalf("%+v verifies", opts)
		return nil
	}

	// Nothing listens on these loopback ports.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedTCP := l.Addr().String()
	l.Close()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedUDP := u.LocalAddr().String()
	u.Close()
	// This one listens and never answers.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rtQuery := func(addr string) error {
		_, err := roughtime.Query(ctx, addr, pub, roughtime.VersionGoogle, roughtime.QueryOptions{Attempts: 1, Wait: 20 * time.Millisecond})
		return err
	}
	nts, err := ntsclient.New(ntsclient.Config{Addr: closedTCP, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, ntsRefused := nts.Query(ctx)

	tests := []struct {
		name string
		err  error
		want string
	}{
		{"answered", nil, ""},
		{"unknown authority", verify(x509.VerifyOptions{Roots: x509.NewCertPool(), CurrentTime: valid}), failCertificate},
		{"expired", verify(x509.VerifyOptions{Roots: own, CurrentTime: valid.AddDate(2, 0, 0)}), failCertificate},
		{"another name", verify(x509.VerifyOptions{Roots: own, CurrentTime: valid, DNSName: "other.test"}), failName},
		{"NTS-KE refused by the port", ntsRefused, failUnreachable},
		{"Roughtime refused by the port", rtQuery(closedUDP), failUnreachable},
		{"Roughtime without a reply", rtQuery(silent.LocalAddr().String()), failUnreachable},
		{"timeout", fmt.Errorf("ntsclient: NTS-KE with a:4460: %w", context.DeadlineExceeded), failUnreachable},
		{"read deadline", &net.OpError{Op: "read", Net: "udp", Err: os.ErrDeadlineExceeded}, failUnreachable},
		{"name not found", fmt.Errorf("ntsclient: NTS-KE with a:4460: %w", &net.DNSError{Err: "no such host", Name: "a", IsNotFound: true}), failUnreachable},
		{"filtered egress", fmt.Errorf("roughtime: send to a:2002: %w", &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("write", syscall.EPERM)}), failUnreachable},
		{"unsynchronised", fmt.Errorf("ntsclient: NTP a:123: %w (leap 3, stratum 0)", ntsclient.ErrUnsynchronized), failUnsynchronised},
		{"NTS-KE error record", fmt.Errorf("ntsclient: NTS-KE with a:4460: %w: error record 0001", ntsclient.ErrKERefused), failRejected},
		{"NTS NAK", fmt.Errorf("ntsclient: NTP a:123: %w", ntsclient.ErrNAK), failRejected},
		{"NTS authenticator", fmt.Errorf("ntsclient: NTP a:123: %w: no authenticator", ntsclient.ErrAuthentication), failAuthentication},
		{"Roughtime signature", fmt.Errorf("%w: signature", roughtime.ErrInvalidReply), failAuthentication},
		{"malformed NTS-KE", fmt.Errorf("%w: no cookie", ntsclient.ErrKEMalformed), failProtocol},
		{"not a reply", fmt.Errorf("ntsclient: NTP a:123: %w: 12 bytes", ntsclient.ErrNotReply), failProtocol},
		{"anything else", errors.New("integrity: NTS witness sample with a negative delay or dispersion"), failOther},
	}
	for _, tc := range tests {
		if got := witnessFailure(tc.err); got != tc.want {
			t.Errorf("%s: %v classed %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestWitnessFailuresDocumented: the runbook's table and the status
// table in OPERATIONS name every class /health can show.
func TestWitnessFailuresDocumented(t *testing.T) {
	runbook, err := os.ReadFile("../../docs/runbooks/IntegrityWitnessDown.md")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{failCertificate, failName, failUnreachable, failRejected, failAuthentication, failUnsynchronised, failProtocol, failOther} {
		if !strings.Contains(string(runbook), "| `"+c+"` |") {
			t.Errorf("the IntegrityWitnessDown runbook's table has no row for %q", c)
		}
		if !strings.Contains(string(ops), "`"+c+"`") {
			t.Errorf("docs/OPERATIONS.md does not name the witness failure %q", c)
		}
	}
}
