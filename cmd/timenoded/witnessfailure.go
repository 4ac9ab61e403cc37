package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"syscall"

	"github.com/aunsorm/timenode/netsvc/nts/ntsclient"
	"github.com/aunsorm/timenode/netsvc/roughtime"
)

// The classes of a witness's failed query, as /health reports them
// (integrity.witnesses[].failure) and timenodectl status prints them. Each
// names what the operator fixes (docs/runbooks/IntegrityWitnessDown.md);
// the journal keeps the full error.
const (
	// failCertificate: the server's certificate does not chain to the
	// CA the node trusts for its witnesses.
	failCertificate = "certificate"
	// failName: the certificate does not name the configured address.
	failName = "name"
	// failUnreachable: no connection or no reply: the server or the path
	// is down, egress is filtered, the name does not resolve, or a
	// draft-11 Roughtime server with another key ignores the request.
	failUnreachable = "unreachable"
	// failRejected: the NTS server refused the session (an NTS-KE error
	// record, an NTS NAK).
	failRejected = "rejected"
	// failAuthentication: an answer that fails authentication (NTS
	// authenticator, a Roughtime signature under the configured key).
	failAuthentication = "authentication"
	// failUnsynchronised: the server answers but has no time itself.
	failUnsynchronised = "unsynchronised"
	// failProtocol: an answer that is not the protocol's.
	failProtocol = "protocol"
	// failOther: anything else; the journal has it.
	failOther = "other"
)

// witnessFailure classifies the error of a witness's query for /health,
// which shows the class, not the error: the error can carry the server's
// certificate names and addresses, the journal's business.
func witnessFailure(err error) string {
	var (
		host    x509.HostnameError
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		dns     *net.DNSError
		ne      net.Error
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &host):
		return failName
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &invalid):
		return failCertificate
	case errors.Is(err, ntsclient.ErrUnsynchronized):
		return failUnsynchronised
	case errors.Is(err, ntsclient.ErrKERefused), errors.Is(err, ntsclient.ErrNAK):
		return failRejected
	case errors.Is(err, ntsclient.ErrAuthentication), errors.Is(err, roughtime.ErrInvalidReply):
		return failAuthentication
	case errors.Is(err, ntsclient.ErrKEMalformed), errors.Is(err, ntsclient.ErrNotReply), errors.Is(err, ntsclient.ErrUniqueID):
		return failProtocol
	case errors.Is(err, roughtime.ErrNoReply), errors.As(err, &dns),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		// nftables' reject of an outbound datagram shows as EPERM.
		errors.Is(err, syscall.EPERM),
		errors.As(err, &ne) && ne.Timeout():
		return failUnreachable
	}
	return failOther
}
