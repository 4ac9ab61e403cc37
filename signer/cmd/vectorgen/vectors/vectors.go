package vectors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aunsorm/timenode/signer"
)

const authority = "ntp.prod.aunsorm"

// Names of the files Files returns.
const (
	KeysName          = "keys.json"
	KeysDocumentsName = "keys_documents.json"
	PositiveName      = "positive.json"
	BatchName         = "batch.json"
	NegativeName      = "negative.json"
)

// Files builds every vector file. The result is the same on every call.
func Files() (files []File, err error) {
	k, err := newKeys()
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, k.Close()) }()
	docs, err := k.documents()
	if err != nil {
		return nil, err
	}
	pos, batch, err := k.positives()
	if err != nil {
		return nil, err
	}
	neg, err := k.negatives(pos, batch)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		v    any
	}{
		{KeysName, k.file()},
		{KeysDocumentsName, docs},
		{PositiveName, pos},
		{BatchName, batch},
		{NegativeName, neg},
	} {
		b, err := json.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("vectors: %s: %w", f.name, err)
		}
		files = append(files, File{Name: f.name, Data: append(b, '\n')})
	}
	return files, nil
}

func nonceOf(label string, n int) []byte {
	s := sha256.Sum256([]byte("timenode attestation test vector nonce " + label))
	return s[:n]
}

func hexp(b []byte) *string {
	s := hex.EncodeToString(b)
	return &s
}

func verifyAt(t time.Time, nonce []byte, production bool, keys ...string) Verify {
	v := Verify{Now: t.Format(time.RFC3339Nano), TrustedKeys: keys, Production: production, MaxAgeSeconds: 30}
	if nonce != nil {
		v.Nonce = hexp(nonce)
	}
	return v
}

// baseClaims are a locked node's claims at at, its GNSS judged trusted
// by enforced integrity checks.
func baseClaims(at time.Time) signer.Claims {
	return signer.Claims{AuthorityID: authority, Stratum: 1, TimestampUnixNs: at.UnixNano(),
		ErrorBoundNs: 250_000, ClockState: "LOCKED", Leap: "none",
		Integrity: &signer.Integrity{State: signer.IntegrityTrusted, Enforced: true, Reasons: []string{}}}
}

// describe fills a vector's intermediate values from the attestation as
// served, rebuilding the claims the way a verifier does.
func describe(name, desc string, a *signer.Attestation, v Verify) (Vector, error) {
	nonce, err := hex.DecodeString(a.Nonce)
	if err != nil {
		return Vector{}, err
	}
	path := make([][32]byte, len(a.Merkle.Path))
	for i, p := range a.Merkle.Path {
		if _, err := hex.Decode(path[i][:], []byte(p)); err != nil {
			return Vector{}, err
		}
	}
	leaf := signer.LeafHash(nonce)
	c := signer.Claims{Version: uint8(a.Version), AuthorityID: a.AuthorityID, Stratum: uint8(a.Stratum), TimestampUnixNs: a.TimestampUnixNs,
		ErrorBoundNs: a.ErrorBoundNs, ClockState: a.ClockState, Leap: a.Leap, Sequence: a.Sequence,
		KeyID: a.KeyID, Development: a.Development, MerkleRoot: signer.RootFromPath(leaf, a.Merkle.Index, path),
		Integrity: a.Integrity}
	msg, err := c.SignedBytes()
	if err != nil {
		return Vector{}, err
	}
	fields, err := splitFields(c, msg)
	if err != nil {
		return Vector{}, fmt.Errorf("vectors: %s: %w", name, err)
	}
	return Vector{Name: name, Description: desc, Verify: v, MerkleLeaf: hex.EncodeToString(leaf[:]),
		Claims: Claims{Version: c.Version, AuthorityID: c.AuthorityID, Stratum: c.Stratum, TimestampUnixNs: c.TimestampUnixNs,
			ErrorBoundNs: c.ErrorBoundNs, ClockState: c.ClockState, Leap: c.Leap, Sequence: c.Sequence,
			KeyID: c.KeyID, Development: c.Development, MerkleRoot: hex.EncodeToString(c.MerkleRoot[:]),
			Integrity: c.Integrity},
		SignedBytes: hex.EncodeToString(msg), Fields: fields, Attestation: *a}, nil
}

// splitFields labels the signed bytes field by field, by the lengths
// docs/ATTESTATION.md gives, and checks they add up to the whole.
func splitFields(c signer.Claims, msg []byte) ([]Field, error) {
	type size struct {
		name string
		n    int
	}
	sizes := []size{
		{"domain", len(signer.Domain)}, {"version", 1},
		{"authority_id.length", 2}, {"authority_id", len(c.AuthorityID)},
		{"stratum", 1}, {"timestamp_unix_ns", 8}, {"error_bound_ns", 8},
		{"clock_state.length", 2}, {"clock_state", len(c.ClockState)},
		{"leap.length", 2}, {"leap", len(c.Leap)},
		{"sequence", 8}, {"key_id.length", 2}, {"key_id", len(c.KeyID)},
		{"development", 1}, {"merkle_root", 32},
	}
	if c.Version >= signer.IntegrityVersion {
		sizes = append(sizes, size{"integrity.present", 1})
	}
	if in := c.Integrity; in != nil {
		sizes = append(sizes, size{"integrity.state.length", 2}, size{"integrity.state", len(in.State)},
			size{"integrity.enforced", 1}, size{"integrity.reasons.count", 1})
		for i, r := range in.Reasons {
			sizes = append(sizes, size{fmt.Sprintf("integrity.reasons[%d].length", i), 2},
				size{fmt.Sprintf("integrity.reasons[%d]", i), len(r)})
		}
	}
	var out []Field
	off := 0
	for _, s := range sizes {
		if off+s.n > len(msg) {
			return nil, fmt.Errorf("signed bytes shorter than their fields (%d bytes)", len(msg))
		}
		out = append(out, Field{Name: s.name, Hex: hex.EncodeToString(msg[off : off+s.n])})
		off += s.n
	}
	if off != len(msg) {
		return nil, fmt.Errorf("signed bytes have %d bytes beyond their fields", len(msg)-off)
	}
	return out, nil
}

func (k *keys) positives() (PositiveFile, BatchFile, error) {
	idA, idB, idD := k.pairs["A"].ID(), k.pairs["B"].ID(), k.pairs["D"].ID()
	prod := signer.NewSignerSet(k.set, func() time.Time { return atT })
	var pos PositiveFile
	add := func(name, desc string, a *signer.Attestation, v Verify) error {
		vec, err := describe(name, desc, a, v)
		if err != nil {
			return err
		}
		pos.Vectors = append(pos.Vectors, vec)
		return nil
	}

	n := nonceOf("single", 32)
	atts, err := prod.Attest(baseClaims(atT), [][]byte{n})
	if err != nil {
		return pos, BatchFile{}, err
	}
	single := atts[0]
	if err := add("single-nonce", "key A, a batch of one 32-byte nonce: empty Merkle path, root = leaf",
		single, verifyAt(atT.Add(1500*time.Millisecond), n, true, idA, idB)); err != nil {
		return pos, BatchFile{}, err
	}

	c := baseClaims(atT.Add(15 * time.Second))
	c.ClockState, c.Leap, c.ErrorBoundNs = "HOLDOVER", "insert", 1_800_000
	if atts, err = prod.Attest(c, nil); err != nil {
		return pos, BatchFile{}, err
	}
	if err := add("no-nonce", "key A, a request without a nonce (the snapshot): nonce \"\", leaf = SHA-256(0x00), holdover, leap insert",
		atts[0], verifyAt(atT.Add(15250*time.Millisecond), nil, true, idA, idB)); err != nil {
		return pos, BatchFile{}, err
	}

	batch, err := k.batch(prod, idA, idB)
	if err != nil {
		return pos, BatchFile{}, err
	}

	n = nonceOf("after rotation", 32)
	if atts, err = prod.Attest(baseClaims(atR), [][]byte{n}); err != nil {
		return pos, BatchFile{}, err
	}
	if err := add("after-rotation", "key B after the rotation (A retired), trusted through A's endorsement",
		atts[0], verifyAt(atR.Add(time.Second), n, true, idB)); err != nil {
		return pos, BatchFile{}, err
	}

	n = nonceOf("development", 16)
	if atts, err = signer.NewSigner(k.pairs["D"], func() time.Time { return atT }).Attest(baseClaims(atT), [][]byte{n}); err != nil {
		return pos, BatchFile{}, err
	}
	if err := add("development", "development key D: verifies only with production off",
		atts[0], verifyAt(atT.Add(time.Second), n, false, idD)); err != nil {
		return pos, BatchFile{}, err
	}

	edOnly := *single
	edOnly.Signatures.MLDSA65 = ""
	v := verifyAt(atT.Add(1500*time.Millisecond), nonceOf("single", 32), true, idA, idB)
	v.Ed25519Only = true
	if err := add("ed25519-only", "single-nonce without its ML-DSA-65 signature, accepted only in Ed25519-only mode",
		&edOnly, v); err != nil {
		return pos, BatchFile{}, err
	}

	// The integrity field in each of its forms (key A).
	for _, iv := range []struct {
		name, desc string
		at         time.Duration // after atT
		bound      int64
		integrity  *signer.Integrity
	}{
		{"integrity-suspect", "GNSS judged suspect (uniform CN0), enforced: the bound carries the 250 µs widening", 20 * time.Second, 500_000,
			&signer.Integrity{State: signer.IntegritySuspect, Enforced: true, Reasons: []string{"receiver/cn0_uniform"}}},
		{"integrity-untrusted-monitored", "GNSS judged untrusted by two detectors, monitored only (--integrity=monitor): still LOCKED, bound not widened", 21 * time.Second, 250_000,
			&signer.Integrity{State: signer.IntegrityUntrusted, Enforced: false, Reasons: []string{"pps/phase_step", "position/position_jump"}}},
		{"integrity-off", "a node without integrity checks (--integrity=off): integrity null, present byte 0", 22 * time.Second, 250_000, nil},
	} {
		at := atT.Add(iv.at)
		c := baseClaims(at)
		c.ErrorBoundNs, c.Integrity = iv.bound, iv.integrity
		n := nonceOf(iv.name, 32)
		if atts, err = prod.Attest(c, [][]byte{n}); err != nil {
			return pos, BatchFile{}, err
		}
		if err := add(iv.name, iv.desc, atts[0], verifyAt(at.Add(time.Second), n, true, idA, idB)); err != nil {
			return pos, BatchFile{}, err
		}
	}
	return pos, batch, nil
}

// batch signs five nonces of mixed lengths at once; five leaves make an
// odd node on the first two levels.
func (k *keys) batch(prod *signer.Signer, trusted ...string) (BatchFile, error) {
	at := atT.Add(time.Second)
	nonces := [][]byte{nonceOf("batch 0", 32), nonceOf("batch 1", 32), nonceOf("batch 2", 16),
		nonceOf("batch 3", 8), nonceOf("batch 4", 32)}
	atts, err := prod.Attest(baseClaims(at), nonces)
	if err != nil {
		return BatchFile{}, err
	}
	b := BatchFile{Description: "one signature (key A) over a Merkle tree of five nonces; an odd node is paired with itself"}
	level := make([][32]byte, len(nonces))
	for i, n := range nonces {
		b.Nonces = append(b.Nonces, hex.EncodeToString(n))
		level[i] = signer.LeafHash(n)
	}
	for {
		var row []string
		for _, h := range level {
			row = append(row, hex.EncodeToString(h[:]))
		}
		b.Levels = append(b.Levels, row)
		if len(level) == 1 {
			break
		}
		var next [][32]byte
		for i := 0; i < len(level); i += 2 {
			r := level[i]
			if i+1 < len(level) {
				r = level[i+1]
			}
			next = append(next, sha256.Sum256(append(append([]byte{1}, level[i][:]...), r[:]...)))
		}
		level = next
	}
	b.Root = hex.EncodeToString(level[0][:])
	for i, a := range atts {
		vec, err := describe(fmt.Sprintf("batch-%d", i), fmt.Sprintf("response %d of the batch", i), a,
			verifyAt(at.Add(500*time.Millisecond), nonces[i], true, trusted...))
		if err != nil {
			return BatchFile{}, err
		}
		if vec.Claims.MerkleRoot != b.Root {
			return BatchFile{}, fmt.Errorf("vectors: batch response %d: root %s, tree root %s", i, vec.Claims.MerkleRoot, b.Root)
		}
		b.Responses = append(b.Responses, vec)
	}
	return b, nil
}
