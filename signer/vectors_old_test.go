package signer_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/cmd/vectorgen/vectors"
)

// v1Dir holds the vectors as generated at format version 1 (commit
// 6440ac8), frozen: the generator now writes version 2, and verifiers must
// keep accepting version 1 documents, whose timestamp_unix_ns is a JSON
// number.
const v1Dir = "../testdata/attestation-v1"

// v1Vector is the part of a version 1 vector this test reads; the
// attestation stays raw so that it is decoded as a client would.
type v1Vector struct {
	Name        string          `json:"name"`
	Verify      vectors.Verify  `json:"verify"`
	SignedBytes string          `json:"signed_bytes_hex"`
	WantError   string          `json:"want_error"`
	Attestation json.RawMessage `json:"attestation"`
}

func readV1(t *testing.T, name string, dst any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(v1Dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func v1Keys(t *testing.T) map[string]signer.PublicKey {
	t.Helper()
	var kf vectors.KeysFile
	readV1(t, vectors.KeysName, &kf)
	out := map[string]signer.PublicKey{}
	for _, kv := range kf.Keys {
		pubs, err := signer.KeysDocument{Keys: []signer.KeyJSON{kv.Public}}.PublicKeys()
		if err != nil {
			t.Fatalf("key %s: %v", kv.Name, err)
		}
		out[pubs[0].ID] = pubs[0]
	}
	return out
}

// TestVersion1VectorsStillVerify decodes every frozen version 1 positive
// vector from its JSON, checks it is in the version 1 form (a numeric
// timestamp_unix_ns, version byte 1), and verifies it with the production
// verifier; every version 1 negative vector must still fail with its class.
func TestVersion1VectorsStillVerify(t *testing.T) {
	keys := v1Keys(t)
	var pos struct{ Vectors []v1Vector }
	var batch struct{ Responses []v1Vector }
	var neg struct{ Vectors []v1Vector }
	readV1(t, vectors.PositiveName, &pos)
	readV1(t, vectors.BatchName, &batch)
	readV1(t, vectors.NegativeName, &neg)
	all := append(pos.Vectors, batch.Responses...)
	if len(all) < 8 || len(neg.Vectors) < 20 {
		t.Fatalf("%d positive and %d negative version 1 vectors", len(all), len(neg.Vectors))
	}
	for _, vec := range all {
		t.Run(vec.Name, func(t *testing.T) {
			var form struct {
				Version int             `json:"version"`
				TS      json.RawMessage `json:"timestamp_unix_ns"`
			}
			if err := json.Unmarshal(vec.Attestation, &form); err != nil || form.Version != 1 || bytes.HasPrefix(form.TS, []byte(`"`)) {
				t.Fatalf("not a version 1 document: version %d, timestamp_unix_ns %s, %v", form.Version, form.TS, err)
			}
			var a signer.Attestation
			if err := json.Unmarshal(vec.Attestation, &a); err != nil {
				t.Fatal(err)
			}
			msg, _ := hex.DecodeString(vec.SignedBytes)
			c, _, err := decodeSignedBytes(msg)
			if err != nil || c.Version != 1 {
				t.Fatalf("signed bytes: version %d, %v", c.Version, err)
			}
			if enc, err := c.SignedBytes(); err != nil || !bytes.Equal(enc, msg) {
				t.Fatalf("version 1 claims re-encode differently: %v", err)
			}
			v, now, nonce := verifierFor(t, keys, vec.Verify)
			if err := v.Verify(&a, now, nonce); err != nil {
				t.Fatalf("version 1 attestation no longer verifies: %v", err)
			}
			// Decoded and re-encoded in Go, it stays a version 1 document.
			again, err := json.Marshal(&a)
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, vec.Attestation); err != nil || !bytes.Equal(again, compact.Bytes()) {
				t.Fatalf("re-encoded differently:\n got %s\nwant %s", again, compact.Bytes())
			}
		})
	}
	for _, vec := range neg.Vectors {
		t.Run("negative/"+vec.Name, func(t *testing.T) {
			var a signer.Attestation
			err := json.Unmarshal(vec.Attestation, &a)
			if err == nil {
				v, now, nonce := verifierFor(t, keys, vec.Verify)
				err = v.Verify(&a, now, nonce)
			}
			checkError(t, err, vec.WantError)
		})
	}
}
