package signer

import (
	"encoding/base64"
	"encoding/hex"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Signer issues attestations with the active key of its key set. The key
// set is swapped atomically by Swap or Reload; signatures in progress
// finish with the old keys before those are wiped.
type Signer struct {
	mu  sync.RWMutex // read-held while signing, write-held to swap
	set *KeySet
	seq atomic.Uint64 // the last sequence number issued
	now func() time.Time

	// retain is how long a key that Swap removes stays published; removed
	// holds those keys and until when.
	retain  time.Duration
	removed []retiredKey
}

// retiredKey is the public half of a key removed by Swap, still published
// so that what it signed just before can be verified.
type retiredKey struct {
	pub   PublicKey
	until time.Time
}

// RetainRemoved keeps a key that Swap removes on /keys for d after the
// swap (for public verification only; it signs nothing more). An
// attestation is valid for its max age after it was signed, and a client
// that refreshes /keys in between must still find its key: the daemon
// passes twice the advertised max age. Zero (the default) drops removed
// keys at once.
func (s *Signer) RetainRemoved(d time.Duration) {
	s.mu.Lock()
	s.retain = d
	s.mu.Unlock()
}

// nextSeq returns the next batch's sequence number: the injected clock's
// Unix time in microseconds, or one more than the last number when that is
// not larger. A counter from 1 repeated its numbers after every restart
// with the same key, so two different batches of one key could carry the
// same number; microseconds keep the numbers of one key unique across
// restarts as long as batches are fewer than a million a second (each
// costs an ML-DSA-65 signature, hundreds of microseconds) and the clock is
// not stepped back across a restart. 2^53 microseconds last until 2255.
func (s *Signer) nextSeq() uint64 {
	floor := uint64(0)
	if us := s.now().UnixMicro(); us > 0 {
		floor = uint64(us)
	}
	for {
		last := s.seq.Load()
		next := max(last+1, floor)
		if s.seq.CompareAndSwap(last, next) {
			return next
		}
	}
}

// NewSigner returns a signer using one key, for tests and simulation; now
// tells which keys are published (tests pass their injected time, never
// the wall clock, so that they hold on any date).
func NewSigner(key *KeyPair, now func() time.Time) *Signer {
	s := &Signer{now: now}
	if key != nil {
		s.set = &KeySet{keys: []*KeyPair{key}}
	}
	return s
}

// NewSignerSet returns a signer over a key set; now tells which keys are
// published (the daemon passes its disciplined clock's Now).
func NewSignerSet(set *KeySet, now func() time.Time) *Signer {
	return &Signer{set: set, now: now}
}

// Keys returns the public keys currently published: every key of the set
// not yet past its window.
func (s *Signer) Keys() []PublicKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.set == nil {
		return nil
	}
	now := s.now()
	keys := s.set.Published(now)
	for _, r := range s.removed {
		if now.Before(r.until) {
			keys = append(keys, r.pub)
		}
	}
	return keys
}

// Ready reports whether the signer has a key valid now.
func (s *Signer) Ready() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.set != nil && s.set.Active(s.now()) != nil
}

// Swap installs set and wipes the previous key set once no signature
// uses it any more.
func (s *Signer) Swap(set *KeySet) error {
	s.mu.Lock()
	old := s.set
	s.set = set
	s.retire(old)
	s.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// retire records the keys of old that the current set no longer has, to
// be published for s.retain; s.mu is write-held.
func (s *Signer) retire(old *KeySet) {
	now := s.now()
	kept := s.removed[:0]
	for _, r := range s.removed {
		if now.Before(r.until) {
			kept = append(kept, r)
		}
	}
	s.removed = kept
	if old == nil || s.set == nil || s.retain <= 0 {
		return
	}
	in := map[string]bool{}
	for _, k := range s.set.keys {
		in[k.pub.ID] = true
	}
	for _, k := range old.keys {
		if !in[k.pub.ID] && !slices.ContainsFunc(s.removed, func(r retiredKey) bool { return r.pub.ID == k.pub.ID }) {
			s.removed = append(s.removed, retiredKey{pub: k.pub, until: now.Add(s.retain)})
		}
	}
}

// Reload loads a key set with cfg (the daemon calls it on SIGHUP) and
// swaps it in. On any error the old keys keep serving and the error says
// why; the caller logs it.
func (s *Signer) Reload(cfg LoadConfig) error {
	set, err := LoadKeySet(cfg)
	if err != nil {
		return err
	}
	if set.Active(cfg.Now) == nil {
		set.Close()
		return ErrNoKeyValid(cfg.Now)
	}
	return s.Swap(set)
}

// Close wipes all keys; the signer is not ready afterwards.
func (s *Signer) Close() error { return s.Swap(nil) }

// Attest signs one batch: c (whose Version, KeyID, Development, Sequence
// and MerkleRoot are filled in here; its Integrity is signed as given) over a Merkle tree of the nonces, and
// returns one attestation per nonce, in order. A nil or empty nonce is a
// request without one. The signing key is the one active at c's time.
func (s *Signer) Attest(c Claims, nonces [][]byte) ([]*Attestation, error) {
	if len(nonces) == 0 {
		nonces = [][]byte{nil}
	}
	leaves := make([][32]byte, len(nonces))
	for i, n := range nonces {
		leaves[i] = LeafHash(n)
	}
	root, paths := BuildTree(leaves)

	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.set == nil {
		return nil, ErrNoKey
	}
	key := s.set.Active(time.Unix(0, c.TimestampUnixNs))
	if key == nil {
		return nil, ErrNoKeyValid(time.Unix(0, c.TimestampUnixNs))
	}
	c.Version, c.Sequence = FormatVersion, s.nextSeq()
	c.Integrity = c.Integrity.Clone() // what is signed is what is served, whatever the caller does next
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
	shared := sharedFields{FormatVersion, c.AuthorityID, int(c.Stratum), ts, c.TimestampUnixNs, c.ErrorBoundNs,
		c.ClockState, c.Leap, c.Sequence, c.Integrity.Clone(), c.KeyID, c.Development, sigs}
	enc, err := newBatchJSON(shared)
	if err != nil {
		return nil, err
	}
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
			// Each its own copy, so that AppendJSON notices a change.
			Integrity: c.Integrity.Clone(),
			Nonce:     hex.EncodeToString(n), KeyID: c.KeyID, Development: c.Development,
			Merkle: Proof{Index: uint64(i), Path: path}, Signatures: sigs,
			enc: enc,
		}
	}
	return out, nil
}
