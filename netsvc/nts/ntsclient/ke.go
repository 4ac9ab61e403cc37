package ntsclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/aunsorm/timenode/netsvc/nts"
)

// Limits on a KE response. chronyd and our server send eight cookies of
// about a hundred bytes; the bounds leave ample room while keeping a
// hostile server from feeding the client without end.
const (
	// MaxKEResponseBytes bounds the bytes read before End of Message.
	MaxKEResponseBytes = 16 * 1024
	// MaxCookies is the most cookies the client keeps.
	MaxCookies = 8
	// MaxCookieLen bounds one cookie: with seven placeholders of its
	// size a request must still fit a UDP datagram without fragments.
	MaxCookieLen = 128
	// maxKERecords bounds the records of a response.
	maxKERecords = 64
)

// DefaultNTPPort is the NTP port when the KE server names none.
const DefaultNTPPort = 123

// Sentinel errors. Each is wrapped with the operation and the server.
var (
	// ErrKERefused: the KE server sent an Error or Warning record, or
	// did not agree to NTPv4 with AEAD_AES_SIV_CMAC_256.
	ErrKERefused = errors.New("ntsclient: NTS-KE refused")
	// ErrKEMalformed: the KE response broke the record rules.
	ErrKEMalformed = errors.New("ntsclient: malformed NTS-KE response")
)

// KEResponse is what an NTS-KE server granted.
type KEResponse struct {
	// Cookies are the cookies in the order received (at most
	// MaxCookies; more are ignored).
	Cookies [][]byte
	// Server is the NTPv4 server to ask ("" for the KE server's host).
	Server string
	// Port is the NTPv4 port (0 for DefaultNTPPort).
	Port uint16
}

// ParseKEResponse parses a complete KE response: records up to and
// including End of Message and nothing after it. The response must
// select NTPv4 and AEAD_AES_SIV_CMAC_256 (one of each), carry at least
// one cookie and no Error, Warning or unknown critical record. Cookies
// are copied out of b.
func ParseKEResponse(b []byte) (*KEResponse, error) {
	res := &KEResponse{}
	var sawProto, sawAEAD bool
	for count := 0; ; count++ {
		if count == maxKERecords {
			return nil, fmt.Errorf("%w: more than %d records", ErrKEMalformed, maxKERecords)
		}
		r, rest, err := nts.ParseRecord(b)
		if err != nil {
			return nil, fmt.Errorf("%w: no end of message", ErrKEMalformed)
		}
		b = rest
		switch r.Type {
		case nts.RecordEndOfMessage:
			switch {
			case len(r.Body) != 0:
				return nil, fmt.Errorf("%w: end of message with a body", ErrKEMalformed)
			case len(b) != 0:
				return nil, fmt.Errorf("%w: %d bytes after end of message", ErrKEMalformed, len(b))
			case !sawProto:
				return nil, fmt.Errorf("%w: no next protocol", ErrKEMalformed)
			case !sawAEAD:
				return nil, fmt.Errorf("%w: no AEAD algorithm", ErrKEMalformed)
			case len(res.Cookies) == 0:
				return nil, fmt.Errorf("%w: no cookie", ErrKEMalformed)
			}
			return res, nil
		case nts.RecordNextProtocol, nts.RecordAEADAlgorithm:
			seen, want, what := &sawProto, uint16(nts.ProtocolNTPv4), "next protocol"
			if r.Type == nts.RecordAEADAlgorithm {
				seen, want, what = &sawAEAD, nts.AEADAESSIVCMAC256, "AEAD algorithm"
			}
			if *seen {
				return nil, fmt.Errorf("%w: %s repeated", ErrKEMalformed, what)
			}
			*seen = true
			// An empty list is the server declining every offer.
			if len(r.Body) != 2 || binary.BigEndian.Uint16(r.Body) != want {
				return nil, fmt.Errorf("%w: server chose %s %x, want %d", ErrKERefused, what, r.Body, want)
			}
		case nts.RecordError:
			return nil, fmt.Errorf("%w: error record %x", ErrKERefused, r.Body)
		case nts.RecordWarning:
			// No warning codes are defined: the client cannot know it is
			// safe to go on (RFC 8915 section 4.1.4).
			return nil, fmt.Errorf("%w: warning record %x", ErrKERefused, r.Body)
		case nts.RecordNewCookie:
			if len(r.Body) == 0 || len(r.Body) > MaxCookieLen {
				return nil, fmt.Errorf("%w: cookie of %d bytes", ErrKEMalformed, len(r.Body))
			}
			if len(res.Cookies) < MaxCookies {
				res.Cookies = append(res.Cookies, append([]byte(nil), r.Body...))
			}
		case nts.RecordNTPv4Server:
			if len(r.Body) == 0 || len(r.Body) > 255 || !printableASCII(r.Body) || res.Server != "" {
				return nil, fmt.Errorf("%w: server record %q", ErrKEMalformed, r.Body)
			}
			res.Server = string(r.Body)
		case nts.RecordNTPv4Port:
			if len(r.Body) != 2 || res.Port != 0 || binary.BigEndian.Uint16(r.Body) == 0 {
				return nil, fmt.Errorf("%w: port record %x", ErrKEMalformed, r.Body)
			}
			res.Port = binary.BigEndian.Uint16(r.Body)
		default:
			if r.Critical {
				return nil, fmt.Errorf("%w: unknown critical record %d", ErrKERefused, r.Type)
			}
		}
	}
}

// printableASCII reports whether b is a plausible host name or address
// literal: printable ASCII without spaces.
func printableASCII(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// keRequest offers NTPv4 with AEAD_AES_SIV_CMAC_256 only.
func keRequest() []byte {
	b := nts.AppendUint16Record(nil, true, nts.RecordNextProtocol, nts.ProtocolNTPv4)
	b = nts.AppendUint16Record(b, true, nts.RecordAEADAlgorithm, nts.AEADAESSIVCMAC256)
	return nts.AppendRecord(b, true, nts.RecordEndOfMessage, nil)
}

// keSession is the outcome of one KE session.
type keSession struct {
	keys    nts.Keys
	resp    *KEResponse
	ntpAddr string // host:port of the NTPv4 server
}

// keyExchange runs one NTS-KE session with addr (host:port), verifying
// the server's certificate against roots (nil: the system roots) for
// serverName.
func keyExchange(ctx context.Context, addr, serverName string, roots *x509.CertPool, timeout time.Duration) (*keSession, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("ntsclient: NTS-KE address %q: %w", addr, err)
	}
	if serverName == "" {
		serverName = host
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{
		RootCAs:    roots,
		ServerName: serverName,
		NextProtos: []string{nts.ALPN},
		MinVersion: tls.VersionTLS13,
	}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ntsclient: NTS-KE with %s: %w", addr, err)
	}
	conn := c.(*tls.Conn)
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	st := conn.ConnectionState()
	if st.NegotiatedProtocol != nts.ALPN {
		return nil, fmt.Errorf("ntsclient: NTS-KE with %s: server did not select ALPN %q", addr, nts.ALPN)
	}
	if _, err := conn.Write(keRequest()); err != nil {
		return nil, fmt.Errorf("ntsclient: NTS-KE with %s: write: %w", addr, err)
	}
	raw, err := readKEResponse(conn)
	if err != nil {
		return nil, fmt.Errorf("ntsclient: NTS-KE with %s: %w", addr, err)
	}
	resp, err := ParseKEResponse(raw)
	if err != nil {
		return nil, fmt.Errorf("ntsclient: NTS-KE with %s: %w", addr, err)
	}
	s := &keSession{resp: resp}
	if s.keys, err = nts.ExportKeys(&st); err != nil {
		return nil, err
	}
	ntpHost, port := host, DefaultNTPPort
	if resp.Server != "" {
		ntpHost = resp.Server
	}
	if resp.Port != 0 {
		port = int(resp.Port)
	}
	s.ntpAddr = net.JoinHostPort(ntpHost, strconv.Itoa(port))
	return s, nil
}

// readKEResponse reads records up to End of Message, at most
// MaxKEResponseBytes. The server may close the connection after it (it
// should, RFC 8915 section 4) or leave it open: the client reads only
// what it needs.
func readKEResponse(conn net.Conn) ([]byte, error) {
	buf := make([]byte, 0, 2048)
	for {
		if complete(buf) {
			return buf, nil
		}
		if len(buf) == cap(buf) {
			if cap(buf) >= MaxKEResponseBytes {
				return nil, fmt.Errorf("%w: response over %d bytes", ErrKEMalformed, MaxKEResponseBytes)
			}
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := conn.Read(buf[len(buf):min(cap(buf), MaxKEResponseBytes)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if complete(buf) {
				return buf, nil
			}
			return nil, fmt.Errorf("read: %w", err)
		}
	}
}

// complete reports whether b holds whole records up to an End of Message
// record.
func complete(b []byte) bool {
	for {
		r, rest, err := nts.ParseRecord(b)
		if err != nil {
			return false
		}
		if r.Type == nts.RecordEndOfMessage {
			return true
		}
		b = rest
	}
}
