package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts"
	"github.com/aunsorm/timenode/netsvc/nts/siv"
)

// keResponse is what an NTS-KE server answered (RFC 8915 section 4).
type keResponse struct {
	cookies [][]byte
	port    int // NTPv4 port announced, 0 if none
}

// maxKEResponse bounds the bytes read from an NTS-KE server.
const maxKEResponse = 64 << 10

// parseKEResponse reads the records of an NTS-KE response up to End of
// Message. It insists on NTPv4 and AEAD_AES_SIV_CMAC_256, refuses Error
// and Warning records and unknown critical records, and wants at least one
// cookie.
func parseKEResponse(b []byte) (keResponse, error) {
	r, err := parseKERecords(b)
	if err != nil {
		return keResponse{}, err
	}
	return r, nil
}

func parseKERecords(b []byte) (keResponse, error) {
	var r keResponse
	var proto, aead bool
	for {
		if len(b) < 4 {
			return r, errors.New("nts-ke response: truncated before End of Message")
		}
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		critical, typ := typ&0x8000 != 0, typ&0x7fff
		if len(b) < 4+n {
			return r, fmt.Errorf("nts-ke response: record %d truncated", typ)
		}
		body := b[4 : 4+n]
		b = b[4+n:]
		switch typ {
		case nts.RecordEndOfMessage:
			switch {
			case !proto || !aead:
				return r, errors.New("nts-ke response: no NTPv4 with AEAD_AES_SIV_CMAC_256")
			case len(r.cookies) == 0:
				return r, errors.New("nts-ke response: no cookies")
			}
			return r, nil
		case nts.RecordNextProtocol:
			if n != 2 || binary.BigEndian.Uint16(body) != nts.ProtocolNTPv4 {
				return r, fmt.Errorf("nts-ke response: next protocol %x", body)
			}
			proto = true
		case nts.RecordAEADAlgorithm:
			if n != 2 || binary.BigEndian.Uint16(body) != siv.AEADAESSIVCMAC256 {
				return r, fmt.Errorf("nts-ke response: AEAD %x", body)
			}
			aead = true
		case nts.RecordError, nts.RecordWarning:
			return r, fmt.Errorf("nts-ke response: error or warning record %d: %x", typ, body)
		case nts.RecordNewCookie:
			if n == 0 {
				return r, errors.New("nts-ke response: empty cookie")
			}
			r.cookies = append(r.cookies, append([]byte(nil), body...))
		case nts.RecordNTPv4Port:
			if n != 2 {
				return r, errors.New("nts-ke response: bad port record")
			}
			r.port = int(binary.BigEndian.Uint16(body))
		case nts.RecordNTPv4Server:
		default:
			if critical {
				return r, fmt.Errorf("nts-ke response: unknown critical record %d", typ)
			}
		}
	}
}

// ntsSession is what an NTS-KE exchange gives a client: the two keys and
// the cookies.
type ntsSession struct {
	c2s, s2c *siv.AEAD
	cookies  [][]byte
	port     int
}

// keExchange runs NTS-KE against addr, trusting roots only.
func keExchange(addr string, roots *x509.CertPool, timeout time.Duration) (*ntsSession, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		RootCAs: roots, ServerName: host, NextProtos: []string{nts.ALPN}, MinVersion: tls.VersionTLS13,
	})
	if err != nil {
		return nil, fmt.Errorf("ntpbench: nts-ke %s: %w", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	req := nts.AppendRecord(nil, true, nts.RecordNextProtocol, []byte{0, nts.ProtocolNTPv4})
	req = nts.AppendRecord(req, false, nts.RecordAEADAlgorithm, []byte{0, siv.AEADAESSIVCMAC256})
	req = nts.AppendRecord(req, true, nts.RecordEndOfMessage, nil)
	if _, err := conn.Write(req); err != nil {
		return nil, fmt.Errorf("ntpbench: nts-ke %s: %w", addr, err)
	}
	// Servers close after End of Message; read until then.
	resp, err := io.ReadAll(io.LimitReader(conn, maxKEResponse))
	if err != nil && len(resp) == 0 {
		return nil, fmt.Errorf("ntpbench: nts-ke %s: %w", addr, err)
	}
	r, err := parseKEResponse(resp)
	if err != nil {
		return nil, fmt.Errorf("ntpbench: %s: %w", addr, err)
	}
	st := conn.ConnectionState()
	keys, err := nts.ExportKeys(&st)
	if err != nil {
		return nil, err
	}
	s := &ntsSession{cookies: r.cookies, port: r.port}
	if s.c2s, err = siv.New(keys.C2S[:]); err != nil {
		return nil, err
	}
	if s.s2c, err = siv.New(keys.S2C[:]); err != nil {
		return nil, err
	}
	return s, nil
}

// ntsNTP is NTS-protected NTPv4: each request carries a Unique Identifier,
// one cookie and an authenticator sealed with the C2S key over the packet;
// each reply counts only if its authenticator opens with the S2C key.
//
// The session's cookies are used in turn and again: RFC 8915 asks clients
// not to reuse a cookie (so that an observer cannot link requests), but a
// server keeps no record of cookies spent, so reuse costs it exactly what
// a fresh cookie would. The fresh cookies in replies are not used.
type ntsNTP struct {
	s     *ntsSession
	uid   [32]byte
	next  int
	nonce uint64
	efs   []ntp.ExtField
	plain []byte
}

func newNTSNTP(s *ntsSession) *ntsNTP {
	p := &ntsNTP{s: s, efs: make([]ntp.ExtField, 0, ntp.MaxExtFields), plain: make([]byte, 0, bufLen)}
	copy(p.uid[:], "ntpbench unique identifier 32 by")
	return p
}

func (p *ntsNTP) request(b []byte, tx uint64) int {
	pkt := b[:pktLen]
	plainNTP{}.request(pkt, tx)
	pkt = ntp.AppendExtField(pkt, ntp.ExtUniqueIdentifier, p.uid[:])
	pkt = ntp.AppendExtField(pkt, ntp.ExtNTSCookie, p.s.cookies[p.next])
	p.next = (p.next + 1) % len(p.s.cookies)
	// Nonces only need to differ: a counter does.
	p.nonce++
	var nonce [16]byte
	binary.BigEndian.PutUint64(nonce[8:], p.nonce)
	start := len(pkt)
	pkt = binary.BigEndian.AppendUint16(pkt, ntp.ExtNTSAuthenticator)
	pkt = binary.BigEndian.AppendUint16(pkt, ntp.ExtHeaderLen+4+16+siv.TagSize)
	pkt = binary.BigEndian.AppendUint16(pkt, 16)
	pkt = binary.BigEndian.AppendUint16(pkt, siv.TagSize)
	pkt = append(pkt, nonce[:]...)
	pkt = p.s.c2s.Seal(pkt, nonce[:], nil, pkt[:start])
	return len(pkt)
}

func (p *ntsNTP) reply(b []byte) (uint64, replyKind) {
	org, kind := plainNTP{}.reply(b)
	if kind != replyOK {
		return org, kind
	}
	efs, err := ntp.ParseExtFields(b, p.efs[:0])
	if err != nil || len(efs) < 2 || efs[0].Type != ntp.ExtUniqueIdentifier || string(efs[0].Body) != string(p.uid[:]) {
		return org, replyBad
	}
	auth := efs[1]
	if auth.Type != ntp.ExtNTSAuthenticator || len(auth.Body) < 4 {
		return org, replyBad
	}
	nl, cl := int(binary.BigEndian.Uint16(auth.Body)), int(binary.BigEndian.Uint16(auth.Body[2:]))
	np := (nl + 3) &^ 3
	if 4+np+cl > len(auth.Body) {
		return org, replyBad
	}
	nonce, ct := auth.Body[4:4+nl], auth.Body[4+np:4+np+cl]
	if _, err := p.s.s2c.Open(p.plain[:0], nonce, ct, b[:auth.Offset]); err != nil {
		return org, replyBad
	}
	return org, replyOK
}
