package vectors

import (
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/aunsorm/timenode/signer"
)

// flipB64 flips bit `bit` of byte i (negative: from the end) of a base64
// signature.
func flipB64(s string, i, bit int) string {
	b, _ := base64.StdEncoding.DecodeString(s)
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 1 << bit
	return base64.StdEncoding.EncodeToString(b)
}

func retime(a *signer.Attestation, ns int64) {
	a.TimestampUnixNs = ns
	a.Timestamp = time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func find(vs []Vector, name string) Vector {
	for _, v := range vs {
		if v.Name == name {
			return v
		}
	}
	panic("vectors: no positive vector " + name)
}

func (k *keys) negatives(pos PositiveFile, batch BatchFile) (NegativeFile, error) {
	idA, idB := k.pairs["A"].ID(), k.pairs["B"].ID()
	var out NegativeFile
	derive := func(name, desc string, base Vector, want string, mut func(a *signer.Attestation, v *Verify)) {
		a := base.Attestation
		a.Merkle.Path = slices.Clone(a.Merkle.Path)
		a.Integrity = a.Integrity.Clone()
		v := base.Verify
		v.TrustedKeys = slices.Clone(v.TrustedKeys)
		mut(&a, &v)
		out.Vectors = append(out.Vectors, Negative{Name: name, Description: desc, Base: base.Name,
			Verify: v, WantError: want, Attestation: a})
	}
	single, noNonce, dev := find(pos.Vectors, "single-nonce"), find(pos.Vectors, "no-nonce"), find(pos.Vectors, "development")
	b0 := batch.Responses[0]

	// Each signed field changed: the signatures no longer cover the bytes.
	derive("authority-id", "authority_id changed in its last byte", single, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.AuthorityID = a.AuthorityID[:len(a.AuthorityID)-1] + "n" })
	derive("stratum", "stratum 1 -> 2", single, ErrSignature, func(a *signer.Attestation, _ *Verify) { a.Stratum = 2 })
	derive("timestamp", "timestamp and timestamp_unix_ns both +1 ns", single, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { retime(a, a.TimestampUnixNs+1) })
	derive("error-bound", "error_bound_ns -1", single, ErrSignature, func(a *signer.Attestation, _ *Verify) { a.ErrorBoundNs-- })
	derive("clock-state", "clock_state LOCKED -> HOLDOVER", single, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.ClockState = "HOLDOVER" })
	derive("leap", "leap none -> delete", single, ErrSignature, func(a *signer.Attestation, _ *Verify) { a.Leap = "delete" })
	derive("sequence", "sequence +1", single, ErrSignature, func(a *signer.Attestation, _ *Verify) { a.Sequence++ })
	derive("version-downgrade", "relabelled version 2 without its integrity field: the version byte is signed", single, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.Version, a.Integrity = 2, nil })
	derive("version-downgrade-1", "relabelled version 1 (timestamp_unix_ns a number) without its integrity field: the version byte is signed", single, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.Version, a.Integrity = 1, nil })

	// The integrity field changed, removed or added: signed from version 3
	// on, and never accepted in an older document.
	sus, off := find(pos.Vectors, "integrity-suspect"), find(pos.Vectors, "integrity-off")
	derive("integrity-state", "integrity.state suspect -> trusted", sus, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.Integrity.State = signer.IntegrityTrusted })
	derive("integrity-state-and-reasons", "integrity.state suspect -> trusted, reasons emptied", sus, ErrSignature,
		func(a *signer.Attestation, _ *Verify) {
			a.Integrity.State, a.Integrity.Reasons = signer.IntegrityTrusted, []string{}
		})
	derive("integrity-reason", "integrity.reasons[0] replaced by another detector's reason", sus, ErrSignature,
		func(a *signer.Attestation, _ *Verify) {
			a.Integrity.Reasons = []string{"witness/witnesses_insufficient"}
		})
	derive("integrity-enforced", "integrity.enforced true -> false", sus, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.Integrity.Enforced = false })
	derive("integrity-removed", "integrity null (as a node without checks says)", sus, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.Integrity = nil })
	derive("integrity-added", "integrity {trusted, enforced} added to a node without checks", off, ErrSignature,
		func(a *signer.Attestation, _ *Verify) {
			a.Integrity = &signer.Integrity{State: signer.IntegrityTrusted, Enforced: true, Reasons: []string{}}
		})
	derive("integrity-unknown-state", "integrity.state \"fine\"", sus, ErrMalformed,
		func(a *signer.Attestation, _ *Verify) { a.Integrity.State = "fine" })
	derive("integrity-reason-not-printable", "integrity.reasons[0] with a space and a newline", sus, ErrMalformed,
		func(a *signer.Attestation, _ *Verify) { a.Integrity.Reasons = []string{"receiver/cn0 uniform\n"} })
	derive("integrity-in-version-2", "relabelled version 2 keeping its integrity field, which version 2 cannot sign", single, ErrMalformed,
		func(a *signer.Attestation, _ *Verify) { a.Version = 2 })
	derive("integrity-in-version-1", "relabelled version 1 keeping its integrity field, which version 1 cannot sign", single, ErrMalformed,
		func(a *signer.Attestation, _ *Verify) { a.Version = 1 })
	derive("key-id-substituted", "key_id replaced by B's (also trusted): B's keys do not verify A's signatures", single, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.KeyID = idB })
	derive("nonce-substituted", "nonce replaced, and the verifier sent that nonce: the Merkle root changes", single, ErrSignature,
		func(a *signer.Attestation, v *Verify) { a.Nonce = "00" + a.Nonce[2:]; v.Nonce = &a.Nonce })
	derive("merkle-index", "batch response 0 claiming index 1", b0, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.Merkle.Index = 1 })
	derive("merkle-path-element", "batch response 0, lowest bit of path[0] flipped", b0, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.Merkle.Path[0] = flipHex(a.Merkle.Path[0]) })
	derive("merkle-path-truncated", "batch response 0 without its last path element", b0, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.Merkle.Path = a.Merkle.Path[:len(a.Merkle.Path)-1] })

	// Each signature damaged or replaced.
	for _, s := range []struct {
		name      string
		i, bit    int
		mldsa     bool
		described string
	}{
		{"ed25519-first-bit", 0, 0, false, "Ed25519 signature, bit 0 of byte 0 (R)"},
		{"ed25519-last-bit", -1, 7, false, "Ed25519 signature, bit 7 of byte 63 (top of S)"},
		{"ml-dsa-65-first-bit", 0, 0, true, "ML-DSA-65 signature, bit 0 of byte 0 (c~)"},
		{"ml-dsa-65-middle-bit", 1600, 3, true, "ML-DSA-65 signature, bit 3 of byte 1600 (z)"},
		{"ml-dsa-65-last-bit", -1, 0, true, "ML-DSA-65 signature, bit 0 of the last byte (hint counts)"},
	} {
		derive(s.name, s.described, single, ErrSignature, func(a *signer.Attestation, _ *Verify) {
			if s.mldsa {
				a.Signatures.MLDSA65 = flipB64(a.Signatures.MLDSA65, s.i, s.bit)
			} else {
				a.Signatures.Ed25519 = flipB64(a.Signatures.Ed25519, s.i, s.bit)
			}
		})
	}
	derive("ml-dsa-65-missing", "ML-DSA-65 signature removed (hybrid mode)", single, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.Signatures.MLDSA65 = "" })
	derive("ml-dsa-65-truncated", "ML-DSA-65 signature without its last byte", single, ErrSignature,
		func(a *signer.Attestation, _ *Verify) {
			b, _ := base64.StdEncoding.DecodeString(a.Signatures.MLDSA65)
			a.Signatures.MLDSA65 = base64.StdEncoding.EncodeToString(b[:len(b)-1])
		})
	derive("signatures-of-another-attestation", "both signatures taken from no-nonce (same key)", single, ErrSignature,
		func(a *signer.Attestation, _ *Verify) { a.Signatures = noNonce.Attestation.Signatures })

	// Malformed documents.
	derive("version", "version 4", single, ErrMalformed, func(a *signer.Attestation, _ *Verify) { a.Version = 4 })
	derive("sequence-beyond-2^53", "sequence 2^53: version 2 on keeps JSON numbers within 2^53-1", single, ErrMalformed,
		func(a *signer.Attestation, _ *Verify) { a.Sequence = signer.MaxJSONInt + 1 })
	derive("error-bound-beyond-2^53", "error_bound_ns 2^53: version 2 on keeps JSON numbers within 2^53-1", single, ErrMalformed,
		func(a *signer.Attestation, _ *Verify) { a.ErrorBoundNs = signer.MaxJSONInt + 1 })
	derive("stratum-out-of-range", "stratum 256", single, ErrMalformed, func(a *signer.Attestation, _ *Verify) { a.Stratum = 256 })
	derive("timestamp-text-mismatch", "timestamp text 1 s later than timestamp_unix_ns", single, ErrMalformed,
		func(a *signer.Attestation, _ *Verify) {
			a.Timestamp = time.Unix(0, a.TimestampUnixNs+int64(time.Second)).UTC().Format(time.RFC3339Nano)
		})
	derive("nonce-not-hex", "nonce with a non-hex digit", single, ErrMalformed,
		func(a *signer.Attestation, v *Verify) { a.Nonce = "zz" + a.Nonce[2:]; v.Nonce = nil })
	derive("merkle-path-not-hex", "batch response 0, path[0] not hex", b0, ErrMalformed,
		func(a *signer.Attestation, _ *Verify) { a.Merkle.Path[0] = "zz" + a.Merkle.Path[0][2:] })
	derive("merkle-index-beyond-path", "index 1 with an empty path", single, ErrMalformed,
		func(a *signer.Attestation, _ *Verify) { a.Merkle.Index = 1 })
	derive("development-flag", "development true on a production key", single, ErrMalformed,
		func(a *signer.Attestation, _ *Verify) { a.Development = true })

	// Verifier-side failures of an untouched attestation.
	derive("wrong-nonce", "untouched; the verifier sent another nonce", single, ErrNonce,
		func(_ *signer.Attestation, v *Verify) { v.Nonce = hexp(nonceOf("another request", 32)) })
	derive("unknown-key", "untouched; the verifier trusts only B", single, ErrUnknownKey,
		func(_ *signer.Attestation, v *Verify) { v.TrustedKeys = []string{idB} })
	derive("stale", "untouched; verified 30.001 s after its timestamp (max age 30 s)", single, ErrStale,
		func(a *signer.Attestation, v *Verify) {
			v.Now = a.Time().Add(30*time.Second + time.Millisecond).Format(time.RFC3339Nano)
		})
	derive("future", "untouched; verified 31 s before its timestamp", single, ErrFuture,
		func(a *signer.Attestation, v *Verify) {
			v.Now = a.Time().Add(-31 * time.Second).Format(time.RFC3339Nano)
		})
	derive("development-key-in-production", "development vector verified in production mode", dev, ErrDevelopmentKey,
		func(_ *signer.Attestation, v *Verify) { v.Production = true })

	// Keys used outside their windows: signed with the same key material,
	// the published windows refuse them.
	for _, r := range []struct {
		name, desc, key, want string
		at                    time.Time
		trusted               []string
	}{
		{"rotated-out-key", "signed by A after A's window (A still trusted with its window)", "A", ErrKeyWindow, atR, []string{idA, idB}},
		{"retired-key", "signed by A after A's window; A no longer published, the verifier trusts B only", "A", ErrUnknownKey, atR, []string{idB}},
		{"next-key-before-window", "signed by B before B's window opens", "B", ErrKeyWindow, atT, []string{idA, idB}},
	} {
		n := nonceOf(r.name, 32)
		atts, err := signer.NewSigner(k.unbounded[r.key], func() time.Time { return r.at }).Attest(baseClaims(r.at), [][]byte{n})
		if err != nil {
			return out, fmt.Errorf("vectors: %s: %w", r.name, err)
		}
		out.Vectors = append(out.Vectors, Negative{Name: r.name, Description: r.desc, Base: "",
			Verify: verifyAt(r.at.Add(time.Second), n, true, r.trusted...), WantError: r.want, Attestation: *atts[0]})
	}
	return out, nil
}

// flipHex flips the lowest bit of a hex string's last digit.
func flipHex(s string) string {
	b := []byte(s)
	last := b[len(b)-1]
	const digits = "0123456789abcdef"
	for i := range digits {
		if digits[i] == last {
			b[len(b)-1] = digits[i^1]
		}
	}
	return string(b)
}
