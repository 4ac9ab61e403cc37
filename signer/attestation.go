package signer

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Attestation is the JSON document served on /attestation. Every field but
// Nonce, Merkle and Signatures is covered by the signatures directly; the
// nonce is covered through the Merkle root.
//
// Its JSON form depends on Version: from version 2 on, timestamp_unix_ns
// is a decimal string (it is beyond 2^53, which I-JSON readers round);
// version 1 carried a number. Version 3 always has "integrity" (an object,
// or null when the node runs no integrity checks); versions 1 and 2 have
// none (an attestation of theirs that has one is refused: its signatures
// cannot cover it). MarshalJSON and UnmarshalJSON follow the document's
// version, so a version 1 document decoded and re-encoded stays a
// version 1 document.
type Attestation struct {
	Version         int        `json:"version"`
	AuthorityID     string     `json:"authority_id"`
	Stratum         int        `json:"stratum"`
	Timestamp       string     `json:"timestamp"` // RFC 3339, UTC, nanoseconds; must equal TimestampUnixNs
	TimestampUnixNs int64      `json:"timestamp_unix_ns,string"`
	ErrorBoundNs    int64      `json:"error_bound_ns"`
	ClockState      string     `json:"clock_state"`
	Leap            string     `json:"leap"`
	Sequence        uint64     `json:"sequence"`
	Integrity       *Integrity `json:"integrity"` // version 3 on; nil: no integrity checks
	Nonce           string     `json:"nonce"`     // hex, as sent by the client; "" if none
	KeyID           string     `json:"key_id"`
	Development     bool       `json:"development"`
	Merkle          Proof      `json:"merkle"`
	Signatures      Signatures `json:"signatures"`

	enc *batchJSON // the batch's shared fields, encoded; see AppendJSON
}

// attestationV3 is Attestation without its JSON methods: encoding/json
// then follows the struct tags, the current (version 3) form.
type attestationV3 Attestation

// attestationV2 is Attestation in the version 2 form: no integrity field
// (one set anyway is written, so that what is encoded is what a verifier
// refuses, never silently dropped). Its fields must stay exactly
// Attestation's (the conversion in MarshalJSON does not compile
// otherwise); only the tags differ.
type attestationV2 struct {
	Version         int        `json:"version"`
	AuthorityID     string     `json:"authority_id"`
	Stratum         int        `json:"stratum"`
	Timestamp       string     `json:"timestamp"`
	TimestampUnixNs int64      `json:"timestamp_unix_ns,string"`
	ErrorBoundNs    int64      `json:"error_bound_ns"`
	ClockState      string     `json:"clock_state"`
	Leap            string     `json:"leap"`
	Sequence        uint64     `json:"sequence"`
	Integrity       *Integrity `json:"integrity,omitempty"`
	Nonce           string     `json:"nonce"`
	KeyID           string     `json:"key_id"`
	Development     bool       `json:"development"`
	Merkle          Proof      `json:"merkle"`
	Signatures      Signatures `json:"signatures"`

	enc *batchJSON
}

// attestationV1 is the version 1 form: as version 2, but timestamp_unix_ns
// a JSON number.
type attestationV1 struct {
	Version         int        `json:"version"`
	AuthorityID     string     `json:"authority_id"`
	Stratum         int        `json:"stratum"`
	Timestamp       string     `json:"timestamp"`
	TimestampUnixNs int64      `json:"timestamp_unix_ns"`
	ErrorBoundNs    int64      `json:"error_bound_ns"`
	ClockState      string     `json:"clock_state"`
	Leap            string     `json:"leap"`
	Sequence        uint64     `json:"sequence"`
	Integrity       *Integrity `json:"integrity,omitempty"`
	Nonce           string     `json:"nonce"`
	KeyID           string     `json:"key_id"`
	Development     bool       `json:"development"`
	Merkle          Proof      `json:"merkle"`
	Signatures      Signatures `json:"signatures"`

	enc *batchJSON
}

// MarshalJSON encodes the document in the form of its version.
func (a Attestation) MarshalJSON() ([]byte, error) {
	switch {
	case a.Version == 1:
		return json.Marshal(attestationV1(a))
	case a.Version == 2:
		return json.Marshal(attestationV2(a))
	}
	return json.Marshal(attestationV3(a))
}

// UnmarshalJSON decodes a document of any version. The form of
// timestamp_unix_ns must be its version's: a number in version 1, a
// canonical decimal string from version 2 on (unknown versions are left
// to the verifier to refuse). An integrity field is decoded in every
// version; the verifier refuses one before version 3.
func (a *Attestation) UnmarshalJSON(b []byte) error {
	var doc struct {
		*attestationV3
		// Shadows the embedded field: decoded below once the version
		// is known.
		TimestampUnixNs json.RawMessage `json:"timestamp_unix_ns"`
	}
	doc.attestationV3 = (*attestationV3)(a)
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	raw := bytes.TrimSpace(doc.TimestampUnixNs)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil // absent: 0, which the timestamp check refuses
	}
	quoted := raw[0] == '"'
	if (a.Version == 1 && quoted) || (a.Version >= 2 && !quoted) {
		want := "a decimal string"
		if a.Version == 1 {
			want = "a number"
		}
		return fmt.Errorf("%w: timestamp_unix_ns is %s in version %d, not %s", ErrMalformed, raw, a.Version, want)
	}
	if quoted {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != s {
			return fmt.Errorf("%w: timestamp_unix_ns %q is not a canonical decimal integer", ErrMalformed, s)
		}
		a.TimestampUnixNs = n
		return nil
	}
	return json.Unmarshal(raw, &a.TimestampUnixNs)
}

// Proof places the response's nonce in the signed batch.
type Proof struct {
	Index uint64   `json:"index"`
	Path  []string `json:"path"` // sibling hashes, hex, leaf level first
}

// Signatures holds both signatures, standard base64.
type Signatures struct {
	Ed25519 string `json:"ed25519"`
	MLDSA65 string `json:"ml_dsa_65"`
}

// Time returns the attested time.
func (a *Attestation) Time() time.Time { return time.Unix(0, a.TimestampUnixNs).UTC() }

// ErrorBound returns the attested error bound.
func (a *Attestation) ErrorBound() time.Duration { return time.Duration(a.ErrorBoundNs) }

// claims rebuilds the signed claims from the document, recomputing the
// Merkle root from the nonce and the proof.
func (a *Attestation) claims() (*Claims, error) {
	if a.Version < MinFormatVersion || a.Version > FormatVersion {
		return nil, fmt.Errorf("%w: version %d, want %d to %d", ErrMalformed, a.Version, MinFormatVersion, FormatVersion)
	}
	// Version 2 promises I-JSON numbers, which the signer keeps (the
	// sequence restarts at 1 with the process; 2^53 ns of error bound is
	// 104 days); beyond them a reader in JavaScript would round them.
	if a.Version >= 2 && (a.ErrorBoundNs > MaxJSONInt || a.Sequence > MaxJSONInt || a.Merkle.Index > MaxJSONInt) {
		return nil, fmt.Errorf("%w: error_bound_ns, sequence or merkle.index beyond 2^53-1", ErrMalformed)
	}
	if a.Version < IntegrityVersion && a.Integrity != nil {
		return nil, fmt.Errorf("%w: integrity field in a version %d document, whose signatures cannot cover it", ErrMalformed, a.Version)
	}
	if err := a.Integrity.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if a.Stratum < 0 || a.Stratum > 255 {
		return nil, fmt.Errorf("%w: stratum %d", ErrMalformed, a.Stratum)
	}
	ts, err := time.Parse(time.RFC3339Nano, a.Timestamp)
	if err != nil || ts.UnixNano() != a.TimestampUnixNs {
		return nil, fmt.Errorf("%w: timestamp %q does not match timestamp_unix_ns %d", ErrMalformed, a.Timestamp, a.TimestampUnixNs)
	}
	nonce, err := hex.DecodeString(a.Nonce)
	if err != nil {
		return nil, fmt.Errorf("%w: nonce is not hex", ErrMalformed)
	}
	path := make([][32]byte, len(a.Merkle.Path))
	for i, p := range a.Merkle.Path {
		b, err := hex.DecodeString(p)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("%w: merkle path element %d", ErrMalformed, i)
		}
		copy(path[i][:], b)
	}
	if len(path) < 64 && a.Merkle.Index>>uint(len(path)) != 0 {
		return nil, fmt.Errorf("%w: merkle index %d beyond a path of %d", ErrMalformed, a.Merkle.Index, len(path))
	}
	return &Claims{
		Version:         uint8(a.Version),
		AuthorityID:     a.AuthorityID,
		Stratum:         uint8(a.Stratum),
		TimestampUnixNs: a.TimestampUnixNs,
		ErrorBoundNs:    a.ErrorBoundNs,
		ClockState:      a.ClockState,
		Leap:            a.Leap,
		Sequence:        a.Sequence,
		KeyID:           a.KeyID,
		Development:     a.Development,
		MerkleRoot:      RootFromPath(LeafHash(nonce), a.Merkle.Index, path),
		Integrity:       a.Integrity,
	}, nil
}
