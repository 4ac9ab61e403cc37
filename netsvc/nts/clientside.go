package nts

// Helpers for NTS clients (package ntsclient): the record framing is the
// same in both directions, so the client reuses the server's parser.

// ErrIncompleteRecord is returned by ParseRecord when b ends inside a
// record: read more.
var ErrIncompleteRecord = errIncomplete

// AEADAESSIVCMAC256 is the NTS-KE AEAD algorithm id of
// AEAD_AES_SIV_CMAC_256, the only one this package speaks.
const AEADAESSIVCMAC256 = aeadSIV256

// ParseRecord splits the first NTS-KE record off b and returns it and the
// rest of b. Record.Body aliases b. It returns ErrIncompleteRecord when b
// holds less than a whole record.
func ParseRecord(b []byte) (Record, []byte, error) {
	return parseRecord(b)
}

// AppendUint16Record appends a record whose body is a list of 16-bit
// values (Next Protocol Negotiation, AEAD Algorithm Negotiation, Port
// Negotiation).
func AppendUint16Record(b []byte, critical bool, typ uint16, vals ...uint16) []byte {
	return appendUint16Record(b, critical, typ, vals...)
}
