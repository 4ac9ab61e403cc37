package signer

import (
	"encoding/hex"
	"fmt"
	"time"
)

// Attestation is the JSON document served on /attestation. Every field but
// Nonce, Merkle and Signatures is covered by the signatures directly; the
// nonce is covered through the Merkle root.
type Attestation struct {
	Version         int        `json:"version"`
	AuthorityID     string     `json:"authority_id"`
	Stratum         int        `json:"stratum"`
	Timestamp       string     `json:"timestamp"` // RFC 3339, UTC, nanoseconds; must equal TimestampUnixNs
	TimestampUnixNs int64      `json:"timestamp_unix_ns"`
	ErrorBoundNs    int64      `json:"error_bound_ns"`
	ClockState      string     `json:"clock_state"`
	Leap            string     `json:"leap"`
	Sequence        uint64     `json:"sequence"`
	Nonce           string     `json:"nonce"` // hex, as sent by the client; "" if none
	KeyID           string     `json:"key_id"`
	Development     bool       `json:"development"`
	Merkle          Proof      `json:"merkle"`
	Signatures      Signatures `json:"signatures"`

	enc *batchJSON // the batch's shared fields, encoded; see AppendJSON
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
	if a.Version != FormatVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, a.Version, FormatVersion)
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
	}, nil
}
