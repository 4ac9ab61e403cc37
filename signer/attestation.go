package signer

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sync"
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

// Signer issues attestations with the current key.
type Signer struct {
	mu  sync.RWMutex
	key *KeyPair
	seq uint64
}

// NewSigner returns a signer using key.
func NewSigner(key *KeyPair) *Signer { return &Signer{key: key} }

// Keys returns the public keys currently published.
func (s *Signer) Keys() []PublicKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.key == nil {
		return nil
	}
	return []PublicKey{s.key.Public()}
}

// Ready reports whether the signer has a key to sign with.
func (s *Signer) Ready() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.key != nil
}

// Attest signs one batch: c (whose KeyID, Development, Sequence and
// MerkleRoot are filled in here) over a Merkle tree of the nonces, and
// returns one attestation per nonce, in order. A nil or empty nonce is a
// request without one.
func (s *Signer) Attest(c Claims, nonces [][]byte) ([]*Attestation, error) {
	if len(nonces) == 0 {
		nonces = [][]byte{nil}
	}
	leaves := make([][32]byte, len(nonces))
	for i, n := range nonces {
		leaves[i] = LeafHash(n)
	}
	root, paths := BuildTree(leaves)

	s.mu.Lock()
	key := s.key
	s.seq++
	c.Sequence = s.seq
	s.mu.Unlock()
	if key == nil {
		return nil, ErrNoKey
	}
	c.KeyID, c.Development, c.MerkleRoot = key.pub.ID, key.pub.Development, root
	msg, err := c.SignedBytes()
	if err != nil {
		return nil, err
	}
	edSig, mlSig, err := key.sign(msg)
	if err != nil {
		return nil, err
	}
	sigs := Signatures{Ed25519: base64.StdEncoding.EncodeToString(edSig), MLDSA65: base64.StdEncoding.EncodeToString(mlSig)}
	ts := time.Unix(0, c.TimestampUnixNs).UTC().Format(time.RFC3339Nano)
	out := make([]*Attestation, len(nonces))
	for i, n := range nonces {
		path := make([]string, len(paths[i]))
		for j, p := range paths[i] {
			path[j] = hex.EncodeToString(p[:])
		}
		out[i] = &Attestation{
			Version: FormatVersion, AuthorityID: c.AuthorityID, Stratum: int(c.Stratum),
			Timestamp: ts, TimestampUnixNs: c.TimestampUnixNs, ErrorBoundNs: c.ErrorBoundNs,
			ClockState: c.ClockState, Leap: c.Leap, Sequence: c.Sequence,
			Nonce: hex.EncodeToString(n), KeyID: c.KeyID, Development: c.Development,
			Merkle: Proof{Index: uint64(i), Path: path}, Signatures: sigs,
		}
	}
	return out, nil
}
