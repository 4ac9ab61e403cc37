package signer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// TestAppendJSONMatchesMarshal checks the spliced encoding byte for byte
// against encoding/json, for batches of several sizes and for authority
// ids JSON must escape, and that an attestation changed after signing or
// decoded from JSON falls back to a full (and still identical) encoding.
func TestAppendJSONMatchesMarshal(t *testing.T) {
	s := testSigner(t)
	changes := []struct {
		name   string
		change func(*Attestation)
	}{
		{"as signed", func(*Attestation) {}},
		{"nonce changed", func(a *Attestation) { a.Nonce = "00ff" }},
		{"nonce not hex", func(a *Attestation) { a.Nonce = `"<x>"` }},
		{"path entry not hex", func(a *Attestation) { a.Merkle.Path = append(a.Merkle.Path, "z\n") }},
		{"path nil", func(a *Attestation) { a.Merkle.Path = nil }},
		{"timestamp changed", func(a *Attestation) { a.TimestampUnixNs++ }},
		{"signature changed", func(a *Attestation) { a.Signatures.MLDSA65 = "AAAA" + a.Signatures.MLDSA65[4:] }},
		{"key id changed", func(a *Attestation) { a.KeyID = "other" }},
		{"development changed", func(a *Attestation) { a.Development = !a.Development }},
		{"sequence changed", func(a *Attestation) { a.Sequence = 1 << 63 }},
		{"index changed", func(a *Attestation) { a.Merkle.Index = 99 }},
		{"version 1 form", func(a *Attestation) { a.Version = 1 }},
		{"version 2 form", func(a *Attestation) { a.Version = 2 }},
		{"version 2 form without integrity", func(a *Attestation) { a.Version, a.Integrity = 2, nil }},
		{"unknown version", func(a *Attestation) { a.Version = FormatVersion + 1 }},
		{"integrity state changed", func(a *Attestation) { a.Integrity = a.Integrity.Clone(); a.Integrity.State = IntegrityTrusted }},
		{"integrity reasons changed", func(a *Attestation) {
			a.Integrity = a.Integrity.Clone()
			a.Integrity.Reasons = append(a.Integrity.Reasons, "pps/phase_step")
		}},
		{"integrity removed", func(a *Attestation) { a.Integrity = nil }},
	}
	for _, authority := range []string{"ntp.prod.aunsorm", `<node & "1">`, "nœud-ünïcode\u2028"} {
		for _, n := range []int{0, 1, 2, 5} {
			nonces := make([][]byte, n)
			for i := range nonces {
				nonces[i] = []byte{byte(i), 0xab, byte(n)}
			}
			c := claims()
			c.AuthorityID = authority
			atts, err := s.Attest(c, nonces)
			if err != nil {
				t.Fatal(err)
			}
			for i, orig := range atts {
				for _, ch := range changes {
					t.Run(fmt.Sprintf("%q/batch %d/response %d/%s", authority, n, i, ch.name), func(t *testing.T) {
						a := *orig
						a.Merkle.Path = append([]string{}, orig.Merkle.Path...)
						ch.change(&a)
						want, err := json.Marshal(&a)
						if err != nil {
							t.Fatal(err)
						}
						got, err := a.AppendJSON([]byte("prefix"))
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(got, append([]byte("prefix"), want...)) {
							t.Fatalf("AppendJSON differs from json.Marshal:\n got %s\nwant prefix%s", got, want)
						}
						var back Attestation
						if err := json.Unmarshal(want, &back); err != nil {
							t.Fatal(err)
						}
						again, _ := back.AppendJSON(nil)
						if !bytes.Equal(again, want) {
							t.Fatalf("decoded attestation re-encodes differently:\n got %s\nwant %s", again, want)
						}
					})
				}
			}
		}
	}
}

// BenchmarkAttestationJSON compares the spliced encoding of one response
// with encoding/json (the baseline) in the same run.
func BenchmarkAttestationJSON(b *testing.B) {
	s := testSigner(b)
	atts, err := s.Attest(claims(), [][]byte{[]byte("n1"), []byte("n2"), []byte("n3"), []byte("n4"), []byte("n5")})
	if err != nil {
		b.Fatal(err)
	}
	a := atts[3]
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append-json", func(b *testing.B) {
		buf := make([]byte, 0, 8192)
		for b.Loop() {
			var err error
			if buf, err = a.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
