package signer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Domain is the prefix of every signed message; it keeps an attestation
// signature from ever being valid for another protocol's message.
const Domain = "TIMENODE-ATTESTATION-V1\x00"

// FormatVersion is the attestation format a signer issues: the JSON
// document's "version" and the version byte of its signed bytes, so that
// the signatures cover which JSON form the document is in. Version 2
// carries timestamp_unix_ns as a JSON string (I-JSON, RFC 7493: about
// 1.8e18, it is beyond 2^53, where JavaScript and jq 1.6 round numbers)
// and keeps every JSON number within ±(2^53-1). Version 1 carried it as a
// number; verifiers still accept it (MinFormatVersion). Version 3 adds
// the signed integrity field (Integrity); versions 1 and 2 have none, and
// a document of theirs that carries one is malformed.
const FormatVersion = 3

// IntegrityVersion is the first format version with the integrity field.
const IntegrityVersion = 3

// MinFormatVersion is the oldest format a verifier accepts.
const MinFormatVersion = 1

// MaxJSONInt is 2^53-1, the largest integer an I-JSON reader (one that
// decodes numbers into float64) represents exactly. From version 2 on, a
// signed integer carried as a JSON number must not exceed it.
const MaxJSONInt = 1<<53 - 1

// Claims are the signed fields of an attestation, shared by every response
// of one batch.
type Claims struct {
	// Version is the format version of the document and the signed
	// bytes: 0 means FormatVersion; Signer.Attest always issues that.
	Version         uint8
	AuthorityID     string
	Stratum         uint8
	TimestampUnixNs int64  // the attested UTC time
	ErrorBoundNs    int64  // bound on |attested - UTC|
	ClockState      string // LOCKED, HOLDOVER, ...
	Leap            string // none, insert, delete
	Sequence        uint64 // increases with every signed batch
	KeyID           string
	Development     bool
	MerkleRoot      [32]byte
	// Integrity is the node's GNSS integrity state (format version 3
	// on); nil when the node runs no integrity checks. Older versions
	// cannot carry it.
	Integrity *Integrity
}

// ErrEncoding is returned for claims that cannot be encoded (a string
// longer than 65535 bytes, negative bound, a number beyond MaxJSONInt, an
// unknown version).
var ErrEncoding = errors.New("signer: claims not encodable")

// SignedBytes returns the exact bytes both signatures cover:
//
//	Domain
//	u8  Version              (FormatVersion if zero)
//	str AuthorityID          (u16 big-endian length, then UTF-8 bytes)
//	u8  Stratum
//	i64 TimestampUnixNs      (big-endian two's complement)
//	i64 ErrorBoundNs
//	str ClockState
//	str Leap
//	u64 Sequence
//	str KeyID
//	u8  Development          (0 or 1)
//	32  MerkleRoot
//
// and from version 3 on the integrity block (appendIntegrity):
//
//	u8  present              (0: Integrity nil, nothing follows; 1)
//	str Integrity.State
//	u8  Integrity.Enforced   (0 or 1)
//	u8  len(Integrity.Reasons)
//	str each reason
//
// From version 2 on, ErrorBoundNs and Sequence must not exceed MaxJSONInt:
// the document carries them as JSON numbers. Before version 3 Integrity
// must be nil.
func (c *Claims) SignedBytes() ([]byte, error) {
	if c.ErrorBoundNs < 0 {
		return nil, fmt.Errorf("%w: negative error bound", ErrEncoding)
	}
	version := c.Version
	if version == 0 {
		version = FormatVersion
	}
	if version < MinFormatVersion || version > FormatVersion {
		return nil, fmt.Errorf("%w: format version %d", ErrEncoding, version)
	}
	if version >= 2 && (c.ErrorBoundNs > MaxJSONInt || c.Sequence > MaxJSONInt) {
		return nil, fmt.Errorf("%w: error bound %d ns or sequence %d beyond 2^53-1", ErrEncoding, c.ErrorBoundNs, c.Sequence)
	}
	if version < IntegrityVersion && c.Integrity != nil {
		return nil, fmt.Errorf("%w: integrity in format version %d", ErrEncoding, version)
	}
	b := make([]byte, 0, 200+len(c.AuthorityID)+len(c.KeyID))
	b = append(b, Domain...)
	b = append(b, version)
	var err error
	if b, err = appendString(b, c.AuthorityID); err != nil {
		return nil, err
	}
	b = append(b, c.Stratum)
	b = binary.BigEndian.AppendUint64(b, uint64(c.TimestampUnixNs))
	b = binary.BigEndian.AppendUint64(b, uint64(c.ErrorBoundNs))
	for _, s := range []string{c.ClockState, c.Leap} {
		if b, err = appendString(b, s); err != nil {
			return nil, err
		}
	}
	b = binary.BigEndian.AppendUint64(b, c.Sequence)
	if b, err = appendString(b, c.KeyID); err != nil {
		return nil, err
	}
	dev := byte(0)
	if c.Development {
		dev = 1
	}
	b = append(b, dev)
	b = append(b, c.MerkleRoot[:]...)
	if version < IntegrityVersion {
		return b, nil
	}
	return appendIntegrity(b, c.Integrity)
}

func appendString(b []byte, s string) ([]byte, error) {
	if len(s) > math.MaxUint16 {
		return nil, fmt.Errorf("%w: string of %d bytes", ErrEncoding, len(s))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...), nil
}
