package signer

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// sharedFields are the fields every response of one signed batch has in
// common: all but the nonce and the Merkle proof. Their tags are those of
// Attestation in the current format (FormatVersion).
type sharedFields struct {
	Version         int    `json:"version"`
	AuthorityID     string `json:"authority_id"`
	Stratum         int    `json:"stratum"`
	Timestamp       string `json:"timestamp"`
	TimestampUnixNs int64  `json:"timestamp_unix_ns,string"`
	ErrorBoundNs    int64  `json:"error_bound_ns"`
	ClockState      string `json:"clock_state"`
	Leap            string `json:"leap"`
	Sequence        uint64 `json:"sequence"`
	// Integrity is compared by value (sameShared), not by ==.
	Integrity *Integrity `json:"integrity"`
	// After the nonce in the document:
	KeyID       string     `json:"-"`
	Development bool       `json:"-"`
	Signatures  Signatures `json:"-"`
}

func (a *Attestation) shared() sharedFields {
	return sharedFields{a.Version, a.AuthorityID, a.Stratum, a.Timestamp, a.TimestampUnixNs, a.ErrorBoundNs,
		a.ClockState, a.Leap, a.Sequence, a.Integrity, a.KeyID, a.Development, a.Signatures}
}

// sameShared reports whether a still has the fields f encodes.
func (a *Attestation) sameShared(f sharedFields) bool {
	s := a.shared()
	if !s.Integrity.Equal(f.Integrity) {
		return false
	}
	s.Integrity, f.Integrity = nil, nil
	return s == f
}

// batchJSON is the JSON of a batch's shared fields, encoded once per
// batch. AppendJSON splices each response's nonce and proof between its
// pieces instead of re-encoding (and re-scanning for escapes) a 4.4 KB
// signature per request.
type batchJSON struct {
	fields sharedFields // what the pieces encode
	head   []byte       // `{"version":...,"sequence":N,"nonce":"`
	mid    []byte       // `","key_id":"...","development":B,"merkle":{"index":`
	tail   []byte       // `},"signatures":{...}}`
}

func newBatchJSON(f sharedFields) (*batchJSON, error) {
	if f.Version != FormatVersion {
		return nil, fmt.Errorf("signer: batch JSON of format version %d, want %d", f.Version, FormatVersion)
	}
	head, err := json.Marshal(f) // the fields before the nonce; the rest are json:"-"
	if err != nil {
		return nil, err
	}
	keyID, err := json.Marshal(f.KeyID)
	if err != nil {
		return nil, err
	}
	sigs, err := json.Marshal(f.Signatures)
	if err != nil {
		return nil, err
	}
	e := &batchJSON{fields: f}
	e.head = append(head[:len(head)-1], `,"nonce":"`...)
	e.mid = append(append([]byte(`","key_id":`), keyID...), `,"development":`...)
	e.mid = append(strconv.AppendBool(e.mid, f.Development), `,"merkle":{"index":`...)
	e.tail = append(append([]byte(`},"signatures":`), sigs...), '}')
	return e, nil
}

// AppendJSON appends the attestation's JSON document to dst: exactly the
// bytes json.Marshal produces. An attestation fresh from Signer.Attest
// reuses its batch's encoding of the shared fields; any other (decoded by
// a client, or changed since) is marshalled in full.
func (a *Attestation) AppendJSON(dst []byte) ([]byte, error) {
	e := a.enc
	if e == nil || !a.spliceable() || !a.sameShared(e.fields) {
		b, err := json.Marshal(a)
		return append(dst, b...), err
	}
	dst = append(dst, e.head...)
	dst = append(dst, a.Nonce...)
	dst = append(dst, e.mid...)
	dst = strconv.AppendUint(dst, a.Merkle.Index, 10)
	dst = append(dst, `,"path":[`...)
	for i, p := range a.Merkle.Path {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(append(append(dst, '"'), p...), '"')
	}
	dst = append(dst, ']')
	return append(dst, e.tail...), nil
}

// spliceable reports whether the per-response strings are plain hex, which
// JSON carries verbatim, and the path is not nil (which json.Marshal
// writes as null).
func (a *Attestation) spliceable() bool {
	if a.Merkle.Path == nil || !plainHex(a.Nonce) {
		return false
	}
	for _, p := range a.Merkle.Path {
		if !plainHex(p) {
			return false
		}
	}
	return true
}

func plainHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}
