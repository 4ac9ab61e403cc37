package signer_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer"
)

// FuzzAttestationJSON decodes arbitrary documents as a client does, seeded
// with every committed attestation (current and frozen versions, positive
// and negative). Whatever decodes must re-encode and decode to the same
// document; and whatever the production verifier accepts (keys A, B and D
// of the vectors, at the document's own time) must carry exactly the
// signed bytes of a committed positive vector, so that no change to a
// document, its integrity field included, and no relabelling to an older
// version that lacks the field, passes.
func FuzzAttestationJSON(f *testing.F) {
	signed := map[string]bool{}
	for _, dir := range []string{vectorDir, v2Dir, v1Dir} {
		for _, name := range []string{"positive.json", "batch.json", "negative.json"} {
			raw, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				f.Fatal(err)
			}
			var file struct {
				Vectors, Responses []struct {
					SignedBytes string          `json:"signed_bytes_hex"`
					WantError   string          `json:"want_error"`
					Attestation json.RawMessage `json:"attestation"`
				}
			}
			if err := json.Unmarshal(raw, &file); err != nil {
				f.Fatal(err)
			}
			for _, v := range append(file.Vectors, file.Responses...) {
				f.Add([]byte(v.Attestation))
				if v.WantError == "" {
					signed[v.SignedBytes] = true
				}
			}
		}
	}
	keys := testKeys(f)
	var all []signer.PublicKey
	for _, k := range keys {
		all = append(all, k)
	}
	v := signer.NewVerifier(all)
	f.Fuzz(func(t *testing.T, doc []byte) {
		var a signer.Attestation
		if err := json.Unmarshal(doc, &a); err != nil {
			return
		}
		again, err := json.Marshal(&a)
		if err != nil {
			t.Fatalf("decoded but does not encode: %v", err)
		}
		var b signer.Attestation
		if err := json.Unmarshal(again, &b); err != nil {
			t.Fatalf("re-encoded document does not decode: %v\n%s", err, again)
		}
		if !a.Integrity.Equal(b.Integrity) {
			t.Fatalf("integrity %s re-decodes as %s", a.Integrity, b.Integrity)
		}
		a2, b2 := a, b
		a2.Integrity, b2.Integrity = nil, nil
		if !reflect.DeepEqual(a2, b2) {
			t.Fatalf("round trip changed the document:\n%+v\n%+v", a, b)
		}
		if a.TimestampUnixNs < 0 || a.TimestampUnixNs > 1<<62 {
			return
		}
		err = v.Verify(&a, a.Time().Add(time.Second), nil)
		if err != nil {
			if !errors.Is(err, signer.ErrMalformed) && !errors.Is(err, signer.ErrSignature) && !errors.Is(err, signer.ErrUnknownKey) &&
				!errors.Is(err, signer.ErrKeyWindow) && !errors.Is(err, signer.ErrEncoding) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if a.Version < signer.IntegrityVersion && a.Integrity != nil {
			t.Fatalf("version %d document accepted with an integrity field", a.Version)
		}
		msg, err := signedBytesOf(&a)
		if err != nil {
			t.Fatalf("accepted, yet its claims do not encode: %v", err)
		}
		if !signed[hex.EncodeToString(msg)] {
			t.Fatalf("accepted a document whose signed bytes no vector signed:\n%s", doc)
		}
	})
}

// signedBytesOf rebuilds a document's signed bytes the way
// docs/ATTESTATION.md describes (not through the verifier).
func signedBytesOf(a *signer.Attestation) ([]byte, error) {
	nonce, err := hex.DecodeString(a.Nonce)
	if err != nil {
		return nil, err
	}
	path := make([][32]byte, len(a.Merkle.Path))
	for i, p := range a.Merkle.Path {
		b, err := hex.DecodeString(p)
		if err != nil || len(b) != 32 {
			return nil, errors.New("path")
		}
		copy(path[i][:], b)
	}
	c := signer.Claims{Version: uint8(a.Version), AuthorityID: a.AuthorityID, Stratum: uint8(a.Stratum), TimestampUnixNs: a.TimestampUnixNs,
		ErrorBoundNs: a.ErrorBoundNs, ClockState: a.ClockState, Leap: a.Leap, Sequence: a.Sequence, KeyID: a.KeyID,
		Development: a.Development, MerkleRoot: signer.RootFromPath(signer.LeafHash(nonce), a.Merkle.Index, path), Integrity: a.Integrity}
	return c.SignedBytes()
}
