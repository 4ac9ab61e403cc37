package nts

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseKERequest(t *testing.T) {
	eom := AppendRecord(nil, true, RecordEndOfMessage, nil)
	proto := appendUint16Record(nil, true, RecordNextProtocol, ProtocolNTPv4)
	aead := appendUint16Record(nil, true, RecordAEADAlgorithm, aeadSIV256)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	const (
		ok         = -1
		incomplete = -2
	)
	tests := []struct {
		name   string
		in     []byte
		code   int // ok, incomplete, or the Error code
		ntpv4  bool
		sivAES bool
	}{
		{"minimal", cat(proto, aead, eom), ok, true, true},
		{"chrony style", goodKERequest(), ok, true, true},
		{"non-critical AEAD", cat(proto, appendUint16Record(nil, false, RecordAEADAlgorithm, 17, 15), eom), ok, true, true},
		{"server and port suggestions", cat(proto, aead, AppendRecord(nil, false, RecordNTPv4Server, []byte("ntp.example")),
			appendUint16Record(nil, false, RecordNTPv4Port, 123), eom), ok, true, true},
		{"unknown non-critical ignored", cat(proto, AppendRecord(nil, false, 0x4000, []byte{1, 2, 3}), aead, eom), ok, true, true},
		{"no NTPv4", cat(appendUint16Record(nil, true, RecordNextProtocol, 7), eom), ok, false, false},
		{"NTPv4 without SIV", cat(proto, appendUint16Record(nil, true, RecordAEADAlgorithm, 30), eom), ok, true, false},

		{"empty", nil, incomplete, false, false},
		{"half a header", []byte{0x80, 0x01}, incomplete, false, false},
		{"body cut", cat(proto[:5]), incomplete, false, false},
		{"no end of message yet", cat(proto, aead), incomplete, false, false},

		{"unknown critical", cat(proto, AppendRecord(nil, true, 0x4000, nil), aead, eom), ErrorUnrecognizedCritical, false, false},
		{"end of message with body", cat(proto, aead, AppendRecord(nil, true, RecordEndOfMessage, []byte{0})), ErrorBadRequest, false, false},
		{"bytes after end of message", cat(proto, aead, eom, []byte{0}), ErrorBadRequest, false, false},
		{"no next protocol", cat(aead, eom), ErrorBadRequest, false, false},
		{"NTPv4 without AEAD record", cat(proto, eom), ErrorBadRequest, false, false},
		{"next protocol twice", cat(proto, proto, aead, eom), ErrorBadRequest, false, false},
		{"AEAD twice", cat(proto, aead, aead, eom), ErrorBadRequest, false, false},
		{"empty next protocol", cat(AppendRecord(nil, true, RecordNextProtocol, nil), eom), ErrorBadRequest, false, false},
		{"odd AEAD list", cat(proto, AppendRecord(nil, true, RecordAEADAlgorithm, []byte{0, 15, 0}), eom), ErrorBadRequest, false, false},
		{"huge AEAD list", cat(proto, AppendRecord(nil, true, RecordAEADAlgorithm, make([]byte, 2*maxListItems+2)), eom), ErrorBadRequest, false, false},
		{"bad port", cat(proto, aead, AppendRecord(nil, false, RecordNTPv4Port, []byte{1}), eom), ErrorBadRequest, false, false},
		{"empty server", cat(proto, aead, AppendRecord(nil, false, RecordNTPv4Server, nil), eom), ErrorBadRequest, false, false},
		{"error record", cat(proto, aead, appendUint16Record(nil, true, RecordError, 1), eom), ErrorBadRequest, false, false},
		{"warning record", cat(proto, aead, appendUint16Record(nil, true, RecordWarning, 1), eom), ErrorBadRequest, false, false},
		{"cookie record", cat(proto, aead, AppendRecord(nil, false, RecordNewCookie, []byte{1}), eom), ErrorBadRequest, false, false},
		{"too many records", cat(proto, aead, bytes.Repeat(AppendRecord(nil, false, 0x4000, nil), MaxRequestRecords), eom), ErrorBadRequest, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseKERequest(tc.in)
			var ke *keError
			switch {
			case tc.code == ok:
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if req.ntpv4 != tc.ntpv4 || req.sivAES != tc.sivAES {
					t.Fatalf("request %+v, want ntpv4 %v siv %v", req, tc.ntpv4, tc.sivAES)
				}
			case tc.code == incomplete:
				if !errors.Is(err, errIncomplete) {
					t.Fatalf("error %v, want incomplete", err)
				}
			case !errors.As(err, &ke) || int(ke.code) != tc.code:
				t.Fatalf("error %v, want code %d", err, tc.code)
			}
		})
	}
}

func TestAppendRecord(t *testing.T) {
	b := AppendRecord([]byte{0xff}, true, RecordNewCookie, []byte("abc"))
	if want := []byte{0xff, 0x80, 0x05, 0x00, 0x03, 'a', 'b', 'c'}; !bytes.Equal(b, want) {
		t.Fatalf("%x, want %x", b, want)
	}
	r, rest, err := parseRecord(b[1:])
	if err != nil || len(rest) != 0 || !r.Critical || r.Type != RecordNewCookie || string(r.Body) != "abc" {
		t.Fatalf("parsed %+v %x %v", r, rest, err)
	}
}

// FuzzParseKERequest checks that the request parser never panics, that
// every outcome is one of the three documented ones, and that a prefix of
// an accepted request is never accepted and every accepted request ends
// with End of Message: the server must not answer before it.
func FuzzParseKERequest(f *testing.F) {
	f.Add(goodKERequest())
	f.Add(append(appendUint16Record(nil, true, RecordNextProtocol, 0), AppendRecord(nil, true, 0x1234, nil)...))
	f.Add([]byte{0x80, 0, 0, 0})
	f.Add(bytes.Repeat([]byte{0, 9, 0, 0}, 20))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, err := parseKERequest(in)
		var ke *keError
		switch {
		case err == nil:
			if len(in) > 0 {
				if _, perr := parseKERequest(in[:len(in)-1]); perr == nil {
					t.Fatalf("a strict prefix of an accepted request was accepted")
				}
			}
			if !bytes.HasSuffix(in, []byte{0x80, 0, 0, 0}) && !bytes.HasSuffix(in, []byte{0, 0, 0, 0}) {
				t.Fatalf("accepted a request that does not end with End of Message")
			}
		case errors.Is(err, errIncomplete):
		case errors.As(err, &ke):
			if ke.code != ErrorBadRequest && ke.code != ErrorUnrecognizedCritical {
				t.Fatalf("error code %d", ke.code)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}
