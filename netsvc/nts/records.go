package nts

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// NTS-KE record types (RFC 8915 section 4.1, IANA "Network Time Security
// Key Establishment Record Types").
const (
	RecordEndOfMessage  = 0
	RecordNextProtocol  = 1
	RecordError         = 2
	RecordWarning       = 3
	RecordAEADAlgorithm = 4
	RecordNewCookie     = 5
	RecordNTPv4Server   = 6
	RecordNTPv4Port     = 7
)

// criticalBit is the top bit of a record's type word.
const criticalBit = 0x8000

// recordHeaderLen is the size of a record's type and length words.
const recordHeaderLen = 4

// ProtocolNTPv4 is the NTS next protocol id of NTPv4.
const ProtocolNTPv4 = 0

// Error codes of the NTS-KE Error record (RFC 8915 section 4.1.3).
const (
	ErrorUnrecognizedCritical = 0
	ErrorBadRequest           = 1
	ErrorInternalServer       = 2
)

// Limits on a request. A legitimate request (next protocol, AEAD list,
// perhaps a server and port suggestion, end of message) is well under a
// hundred bytes and ten records.
const (
	// MaxRequestBytes bounds the bytes read before End of Message.
	MaxRequestBytes = 1024
	// MaxRequestRecords bounds the records in a request.
	MaxRequestRecords = 16
	// maxListItems bounds a next protocol or AEAD list.
	maxListItems = 32
)

// Record is one NTS-KE record. Body aliases the buffer it was parsed from.
type Record struct {
	Critical bool
	Type     uint16 // without the critical bit
	Body     []byte
}

// errIncomplete means the buffer ends inside a record: read more.
var errIncomplete = errors.New("nts-ke: incomplete record")

// parseRecord splits the first record off b.
func parseRecord(b []byte) (Record, []byte, error) {
	if len(b) < recordHeaderLen {
		return Record{}, b, errIncomplete
	}
	t := binary.BigEndian.Uint16(b)
	n := int(binary.BigEndian.Uint16(b[2:]))
	if len(b) < recordHeaderLen+n {
		return Record{}, b, errIncomplete
	}
	r := Record{Critical: t&criticalBit != 0, Type: t &^ criticalBit, Body: b[recordHeaderLen : recordHeaderLen+n]}
	return r, b[recordHeaderLen+n:], nil
}

// AppendRecord appends a record to b. The body must be shorter than 64 KiB.
func AppendRecord(b []byte, critical bool, typ uint16, body []byte) []byte {
	if critical {
		typ |= criticalBit
	}
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// appendUint16Record appends a record whose body is a list of 16-bit values.
func appendUint16Record(b []byte, critical bool, typ uint16, vals ...uint16) []byte {
	var body []byte
	for _, v := range vals {
		body = binary.BigEndian.AppendUint16(body, v)
	}
	return AppendRecord(b, critical, typ, body)
}

// keError is a request the server answers with an Error record.
type keError struct {
	code   uint16
	reason string
}

func (e *keError) Error() string {
	return fmt.Sprintf("nts-ke: error %d: %s", e.code, e.reason)
}

func badRequest(format string, args ...any) error {
	return &keError{code: ErrorBadRequest, reason: fmt.Sprintf(format, args...)}
}

// keRequest is what a client asked for.
type keRequest struct {
	ntpv4  bool // NTPv4 is among the offered next protocols
	sivAES bool // AEAD_AES_SIV_CMAC_256 is among the offered algorithms
}

// parseKERequest parses a complete request: records up to and including
// End of Message and nothing after it. It returns errIncomplete when b ends
// before End of Message, and a *keError for anything the server must
// refuse. Client preferences for the NTPv4 server and port are validated
// and ignored: the server says where to go.
func parseKERequest(b []byte) (keRequest, error) {
	var req keRequest
	var sawProto, sawAEAD bool
	for count := 0; ; count++ {
		if count == MaxRequestRecords {
			return req, badRequest("more than %d records", MaxRequestRecords)
		}
		r, rest, err := parseRecord(b)
		if err != nil {
			return req, err
		}
		b = rest
		switch r.Type {
		case RecordEndOfMessage:
			if len(r.Body) != 0 {
				return req, badRequest("end of message with a body")
			}
			if len(b) != 0 {
				return req, badRequest("%d bytes after end of message", len(b))
			}
			if !sawProto {
				return req, badRequest("no next protocol negotiation")
			}
			if req.ntpv4 && !sawAEAD {
				return req, badRequest("NTPv4 without AEAD algorithm negotiation")
			}
			return req, nil
		case RecordNextProtocol, RecordAEADAlgorithm:
			if len(r.Body) == 0 || len(r.Body)%2 != 0 || len(r.Body) > 2*maxListItems {
				return req, badRequest("record %d: body of %d bytes", r.Type, len(r.Body))
			}
			seen := &sawProto
			if r.Type == RecordAEADAlgorithm {
				seen = &sawAEAD
			}
			if *seen {
				return req, badRequest("record %d repeated", r.Type)
			}
			*seen = true
			for i := 0; i < len(r.Body); i += 2 {
				v := binary.BigEndian.Uint16(r.Body[i:])
				if r.Type == RecordNextProtocol && v == ProtocolNTPv4 {
					req.ntpv4 = true
				}
				if r.Type == RecordAEADAlgorithm && v == aeadSIV256 {
					req.sivAES = true
				}
			}
		case RecordNTPv4Server:
			if len(r.Body) == 0 || len(r.Body) > 255 {
				return req, badRequest("server negotiation of %d bytes", len(r.Body))
			}
		case RecordNTPv4Port:
			if len(r.Body) != 2 {
				return req, badRequest("port negotiation of %d bytes", len(r.Body))
			}
		case RecordError, RecordWarning, RecordNewCookie:
			// Server-to-client records have no meaning in a request.
			return req, badRequest("record %d in a request", r.Type)
		default:
			if r.Critical {
				return req, &keError{code: ErrorUnrecognizedCritical, reason: fmt.Sprintf("critical record %d", r.Type)}
			}
		}
	}
}
