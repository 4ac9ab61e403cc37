package signer_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/cmd/vectorgen/vectors"
)

// Frozen vectors of older formats, as generated before the format moved
// on: version 1 (commit 6440ac8; timestamp_unix_ns a JSON number) and
// version 2 (before the integrity field of version 3). The generator
// writes only the current version; verifiers must keep accepting these.
const (
	v1Dir = "../testdata/attestation-v1"
	v2Dir = "../testdata/attestation-v2"
)

// oldVector is the part of a frozen vector this test reads; the
// attestation stays raw so that it is decoded as a client would.
type oldVector struct {
	Name        string          `json:"name"`
	Verify      vectors.Verify  `json:"verify"`
	SignedBytes string          `json:"signed_bytes_hex"`
	WantError   string          `json:"want_error"`
	Attestation json.RawMessage `json:"attestation"`
}

func readOld(t *testing.T, dir, name string, dst any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func oldKeys(t *testing.T, dir string) map[string]signer.PublicKey {
	t.Helper()
	var kf vectors.KeysFile
	readOld(t, dir, vectors.KeysName, &kf)
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

// TestVersion1VectorsStillVerify checks the frozen version 1 vectors.
func TestVersion1VectorsStillVerify(t *testing.T) { checkFrozen(t, v1Dir, 1, nil) }

// TestVersion2VectorsStillVerify checks the frozen version 2 vectors. Its
// negative "version" relabelled a version 2 document as version 3, then
// unknown (malformed); version 3 now exists, the relabelled document is
// well formed, and the signed version byte refuses it.
func TestVersion2VectorsStillVerify(t *testing.T) {
	checkFrozen(t, v2Dir, 2, map[string]string{"version": vectors.ErrSignature})
}

// checkFrozen decodes every frozen positive vector of dir from its JSON,
// checks it is in its version's form (timestamp_unix_ns a number in
// version 1, a string in 2; no integrity field; that version byte),
// verifies it with the production verifier, and checks that it still
// re-encodes to the same document; every frozen negative vector must
// still fail with its class (or the class in override).
func checkFrozen(t *testing.T, dir string, version int, override map[string]string) {
	keys := oldKeys(t, dir)
	var pos struct{ Vectors []oldVector }
	var batch struct{ Responses []oldVector }
	var neg struct{ Vectors []oldVector }
	readOld(t, dir, vectors.PositiveName, &pos)
	readOld(t, dir, vectors.BatchName, &batch)
	readOld(t, dir, vectors.NegativeName, &neg)
	all := append(pos.Vectors, batch.Responses...)
	if len(all) < 8 || len(neg.Vectors) < 20 {
		t.Fatalf("%d positive and %d negative version %d vectors", len(all), len(neg.Vectors), version)
	}
	for _, vec := range all {
		t.Run(vec.Name, func(t *testing.T) {
			var form struct {
				Version   int             `json:"version"`
				TS        json.RawMessage `json:"timestamp_unix_ns"`
				Integrity json.RawMessage `json:"integrity"`
			}
			err := json.Unmarshal(vec.Attestation, &form)
			if err != nil || form.Version != version || bytes.HasPrefix(form.TS, []byte(`"`)) != (version >= 2) || form.Integrity != nil {
				t.Fatalf("not a version %d document: version %d, timestamp_unix_ns %s, integrity %s, %v", version, form.Version, form.TS, form.Integrity, err)
			}
			var a signer.Attestation
			if err := json.Unmarshal(vec.Attestation, &a); err != nil {
				t.Fatal(err)
			}
			msg, _ := hex.DecodeString(vec.SignedBytes)
			c, _, err := decodeSignedBytes(msg)
			if err != nil || int(c.Version) != version {
				t.Fatalf("signed bytes: version %d, %v", c.Version, err)
			}
			if enc, err := c.SignedBytes(); err != nil || !bytes.Equal(enc, msg) {
				t.Fatalf("version %d claims re-encode differently: %v", version, err)
			}
			v, now, nonce := verifierFor(t, keys, vec.Verify)
			if err := v.Verify(&a, now, nonce); err != nil {
				t.Fatalf("version %d attestation no longer verifies: %v", version, err)
			}
			// It has no integrity state to require.
			v.RequireTrusted = true
			if err := v.Verify(&a, now, nonce); !errors.Is(err, signer.ErrIntegrityNotTrusted) {
				t.Fatalf("version %d attestation with RequireTrusted: %v, want ErrIntegrityNotTrusted", version, err)
			}
			// Decoded and re-encoded in Go, it stays a document of its version.
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
			want := vec.WantError
			if o, ok := override[vec.Name]; ok {
				want = o
			}
			checkError(t, err, want)
		})
	}
}

// TestOldVersionsRefuseIntegrity adds an integrity field, claiming
// trusted, to every frozen positive document of versions 1 and 2: their
// signatures cannot cover it, so each becomes malformed rather than a
// valid attestation with an unsigned claim.
func TestOldVersionsRefuseIntegrity(t *testing.T) {
	for _, tc := range []struct {
		dir     string
		version int
	}{{v1Dir, 1}, {v2Dir, 2}} {
		keys := oldKeys(t, tc.dir)
		var pos struct{ Vectors []oldVector }
		readOld(t, tc.dir, vectors.PositiveName, &pos)
		for _, vec := range pos.Vectors {
			t.Run(fmt.Sprintf("v%d/%s", tc.version, vec.Name), func(t *testing.T) {
				var doc map[string]json.RawMessage
				if err := json.Unmarshal(vec.Attestation, &doc); err != nil {
					t.Fatal(err)
				}
				doc["integrity"] = json.RawMessage(`{"state":"trusted","enforced":true,"reasons":[]}`)
				forged, _ := json.Marshal(doc)
				var a signer.Attestation
				if err := json.Unmarshal(forged, &a); err != nil {
					t.Fatal(err)
				}
				v, now, nonce := verifierFor(t, keys, vec.Verify)
				if err := v.Verify(&a, now, nonce); !errors.Is(err, signer.ErrMalformed) {
					t.Fatalf("version %d document with an integrity field: %v, want ErrMalformed", tc.version, err)
				}
			})
		}
	}
}
