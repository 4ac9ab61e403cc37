package signer_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/cmd/vectorgen/vectors"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// span is one field of the signed bytes.
type span struct {
	name string
	b    []byte
}

// decodeSignedBytes parses signed bytes by the layout of
// docs/ATTESTATION.md, written from the document rather than from the
// encoder, the way a verifier in another language would.
func decodeSignedBytes(msg []byte) (signer.Claims, []span, error) {
	var c signer.Claims
	var spans []span
	rest := msg
	take := func(name string, n int) ([]byte, error) {
		if len(rest) < n {
			return nil, fmt.Errorf("%s: %d bytes left, want %d", name, len(rest), n)
		}
		b := rest[:n]
		rest = rest[n:]
		spans = append(spans, span{name, b})
		return b, nil
	}
	str := func(name string) (string, error) {
		l, err := take(name+".length", 2)
		if err != nil {
			return "", err
		}
		b, err := take(name, int(binary.BigEndian.Uint16(l)))
		return string(b), err
	}
	fail := func(err error) (signer.Claims, []span, error) { return signer.Claims{}, nil, err }
	d, err := take("domain", len(signer.Domain))
	if err != nil || string(d) != signer.Domain {
		return fail(fmt.Errorf("domain %q", d))
	}
	v, err := take("version", 1)
	if err != nil || v[0] < signer.MinFormatVersion || v[0] > signer.FormatVersion {
		return fail(fmt.Errorf("version %v", v))
	}
	c.Version = v[0]
	if c.AuthorityID, err = str("authority_id"); err != nil {
		return fail(err)
	}
	b, err := take("stratum", 1)
	if err != nil {
		return fail(err)
	}
	c.Stratum = b[0]
	if b, err = take("timestamp_unix_ns", 8); err != nil {
		return fail(err)
	}
	c.TimestampUnixNs = int64(binary.BigEndian.Uint64(b))
	if b, err = take("error_bound_ns", 8); err != nil {
		return fail(err)
	}
	c.ErrorBoundNs = int64(binary.BigEndian.Uint64(b))
	if c.ClockState, err = str("clock_state"); err != nil {
		return fail(err)
	}
	if c.Leap, err = str("leap"); err != nil {
		return fail(err)
	}
	if b, err = take("sequence", 8); err != nil {
		return fail(err)
	}
	c.Sequence = binary.BigEndian.Uint64(b)
	if c.KeyID, err = str("key_id"); err != nil {
		return fail(err)
	}
	if b, err = take("development", 1); err != nil || b[0] > 1 {
		return fail(fmt.Errorf("development byte %v", b))
	}
	c.Development = b[0] == 1
	if b, err = take("merkle_root", 32); err != nil {
		return fail(err)
	}
	copy(c.MerkleRoot[:], b)
	if c.Version >= signer.IntegrityVersion {
		if b, err = take("integrity.present", 1); err != nil || b[0] > 1 {
			return fail(fmt.Errorf("integrity.present byte %v", b))
		}
		if b[0] == 1 {
			in := &signer.Integrity{Reasons: []string{}}
			if in.State, err = str("integrity.state"); err != nil {
				return fail(err)
			}
			if b, err = take("integrity.enforced", 1); err != nil || b[0] > 1 {
				return fail(fmt.Errorf("integrity.enforced byte %v", b))
			}
			in.Enforced = b[0] == 1
			if b, err = take("integrity.reasons.count", 1); err != nil {
				return fail(err)
			}
			for i := range int(b[0]) {
				r, err := str(fmt.Sprintf("integrity.reasons[%d]", i))
				if err != nil {
					return fail(err)
				}
				in.Reasons = append(in.Reasons, r)
			}
			c.Integrity = in
		}
	}
	if len(rest) != 0 {
		return fail(fmt.Errorf("%d trailing bytes", len(rest)))
	}
	return c, spans, nil
}

func claimsOf(t *testing.T, c vectors.Claims) signer.Claims {
	t.Helper()
	out := signer.Claims{Version: c.Version, AuthorityID: c.AuthorityID, Stratum: c.Stratum, TimestampUnixNs: c.TimestampUnixNs,
		ErrorBoundNs: c.ErrorBoundNs, ClockState: c.ClockState, Leap: c.Leap, Sequence: c.Sequence,
		KeyID: c.KeyID, Development: c.Development, Integrity: c.Integrity}
	if n, err := hex.Decode(out.MerkleRoot[:], []byte(c.MerkleRoot)); err != nil || n != 32 {
		t.Fatalf("merkle root %q", c.MerkleRoot)
	}
	return out
}

// fieldAt names the field holding byte i of msg.
func fieldAt(spans []span, i int) string {
	for _, s := range spans {
		if i < len(s.b) {
			return s.name
		}
		i -= len(s.b)
	}
	return "beyond the end"
}

// TestSignedBytesBitFlips flips one bit at every byte position of every
// positive vector's signed bytes (all eight bits for single-nonce): both
// signatures must fail over the changed bytes, and where the change is a
// field value an attestation can carry, the production verifier must
// refuse the attestation carrying it, with ErrSignature (the key is
// registered under a changed key id or development flag too, so that only
// the signature can refuse it).
func TestSignedBytesBitFlips(t *testing.T) {
	keys := testKeys(t)
	seen := map[string]bool{}
	for _, vec := range positives(t) {
		if seen[vec.SignedBytes] {
			continue // a batch's responses share their signed bytes
		}
		seen[vec.SignedBytes] = true
		t.Run(vec.Name, func(t *testing.T) {
			msg, _ := hex.DecodeString(vec.SignedBytes)
			_, spans, err := decodeSignedBytes(msg)
			if err != nil {
				t.Fatal(err)
			}
			base := vec.Attestation
			key := keys[base.KeyID]
			edSig, _ := base64.StdEncoding.DecodeString(base.Signatures.Ed25519)
			mlSig, _ := base64.StdEncoding.DecodeString(base.Signatures.MLDSA65)
			checkML := !vec.Verify.Ed25519Only
			now, _ := time.Parse(time.RFC3339Nano, vec.Verify.Now)
			viaVerifier := 0
			for i := range msg {
				bits := []int{i % 8}
				if vec.Name == "single-nonce" {
					bits = []int{0, 1, 2, 3, 4, 5, 6, 7}
				}
				for _, bit := range bits {
					flipped := bytes.Clone(msg)
					flipped[i] ^= 1 << bit
					where := fmt.Sprintf("byte %d (%s) bit %d", i, fieldAt(spans, i), bit)
					if ed25519.Verify(key.Ed25519, flipped, edSig) {
						t.Fatalf("%s: ed25519 still verifies", where)
					}
					if checkML && mldsa65.Verify(key.MLDSA65, flipped, nil, mlSig) {
						t.Fatalf("%s: ml-dsa-65 still verifies", where)
					}
					c, _, err := decodeSignedBytes(flipped)
					if err != nil || fieldAt(spans, i) == "merkle_root" {
						continue // not expressible as an attestation: the raw checks above cover it
					}
					viaVerifier++
					a := base
					a.AuthorityID, a.Stratum, a.ClockState, a.Leap = c.AuthorityID, int(c.Stratum), c.ClockState, c.Leap
					a.TimestampUnixNs = c.TimestampUnixNs
					a.Timestamp = time.Unix(0, c.TimestampUnixNs).UTC().Format(time.RFC3339Nano)
					a.ErrorBoundNs, a.Sequence, a.KeyID, a.Development = c.ErrorBoundNs, c.Sequence, c.KeyID, c.Development
					a.Integrity = c.Integrity
					k := key
					k.ID, k.Development = c.KeyID, c.Development
					v := signer.NewVerifier([]signer.PublicKey{k})
					v.Ed25519Only = vec.Verify.Ed25519Only
					err = v.Verify(&a, now, nil)
					// A flip past 2^53-1 makes a document version 2 does not allow.
					beyond := c.Version >= 2 && (c.ErrorBoundNs > signer.MaxJSONInt || c.Sequence > signer.MaxJSONInt)
					// A flip in the integrity state or a reason may make a value
					// the format does not allow.
					invalid := beyond || c.Integrity.Validate() != nil
					if !errors.Is(err, signer.ErrSignature) && !(c.ErrorBoundNs < 0 && errors.Is(err, signer.ErrEncoding)) &&
						!(invalid && errors.Is(err, signer.ErrMalformed)) {
						t.Fatalf("%s: verifier: %v, want ErrSignature", where, err)
					}
				}
			}
			if viaVerifier < len(msg)/2 {
				t.Fatalf("only %d of %d flips went through the verifier", viaVerifier, len(msg))
			}
		})
	}
}

// TestSignatureBitFlips flips a bit in every byte of the Ed25519
// signature and, in ML-DSA-65's, every byte of c~ (48 bytes), every 11th
// byte of z and every byte of the hint (last 61 bytes); the production
// verifier must refuse each.
func TestSignatureBitFlips(t *testing.T) {
	keys := testKeys(t)
	var vec vectors.Vector
	for _, v := range positives(t) {
		if v.Name == "single-nonce" {
			vec = v
		}
	}
	v, now, nonce := verifierFor(t, keys, vec.Verify)
	edSig, _ := base64.StdEncoding.DecodeString(vec.Attestation.Signatures.Ed25519)
	mlSig, _ := base64.StdEncoding.DecodeString(vec.Attestation.Signatures.MLDSA65)
	if len(edSig) != ed25519.SignatureSize || len(mlSig) != mldsa65.SignatureSize {
		t.Fatalf("signature sizes %d and %d", len(edSig), len(mlSig))
	}
	const cTilde, hint = 48, 61
	var mlPositions []int
	for i := range mlSig {
		if i < cTilde || i >= len(mlSig)-hint || (i-cTilde)%11 == 0 {
			mlPositions = append(mlPositions, i)
		}
	}
	for _, tc := range []struct {
		name      string
		sig       []byte
		positions []int
		set       func(a *signer.Attestation, s []byte)
	}{
		{"ed25519", edSig, seq(len(edSig)), func(a *signer.Attestation, s []byte) {
			a.Signatures.Ed25519 = base64.StdEncoding.EncodeToString(s)
		}},
		{"ml-dsa-65", mlSig, mlPositions, func(a *signer.Attestation, s []byte) {
			a.Signatures.MLDSA65 = base64.StdEncoding.EncodeToString(s)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, i := range tc.positions {
				s := bytes.Clone(tc.sig)
				s[i] ^= 1 << (i % 8)
				a := vec.Attestation
				tc.set(&a, s)
				if err := v.Verify(&a, now, nonce); !errors.Is(err, signer.ErrSignature) {
					t.Fatalf("bit %d of byte %d flipped: %v, want ErrSignature", i%8, i, err)
				}
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
