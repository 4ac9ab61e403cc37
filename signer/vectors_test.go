package signer_test

//go:generate go run ./cmd/vectorgen -out ../testdata/attestation

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/cmd/vectorgen/vectors"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

const vectorDir = "../testdata/attestation"

// readVector decodes a committed vector file strictly: a field the types
// do not know is an error, so the files and the generator cannot diverge
// silently.
func readVector[T any](t testing.TB, name string) T {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatalf("%v (run go generate ./signer/)", err)
	}
	var v T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func TestVectorsRegenerateIdentically(t *testing.T) {
	files, err := vectors.Files()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, f := range files {
		want[f.Name] = true
		got, err := os.ReadFile(filepath.Join(vectorDir, f.Name))
		if err != nil {
			t.Errorf("%s: %v (run go generate ./signer/)", f.Name, err)
			continue
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s differs from a fresh generation (%d bytes committed, %d generated): run go generate ./signer/", f.Name, len(got), len(f.Data))
		}
	}
	entries, err := os.ReadDir(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("%s/%s is not produced by the generator: remove it", vectorDir, e.Name())
		}
	}
}

// testKeys returns keys.json's keys by id, parsed by the /keys parser,
// after checking that each key's seeds reproduce it.
func testKeys(t testing.TB) map[string]signer.PublicKey {
	t.Helper()
	kf := readVector[vectors.KeysFile](t, vectors.KeysName)
	out := map[string]signer.PublicKey{}
	for _, kv := range kf.Keys {
		if !kv.TestOnly {
			t.Errorf("key %s is not marked test_only", kv.Name)
		}
		pubs, err := signer.KeysDocument{Keys: []signer.KeyJSON{kv.Public}}.PublicKeys()
		if err != nil {
			t.Fatalf("key %s: %v", kv.Name, err)
		}
		p := pubs[0]
		edSeed, _ := hex.DecodeString(kv.Ed25519Seed)
		mlSeed, _ := hex.DecodeString(kv.MLDSA65Seed)
		kp, err := signer.NewKeyPair(edSeed, mlSeed, signer.KeyOptions{Development: p.Development})
		if err != nil {
			t.Fatalf("key %s from its seeds: %v", kv.Name, err)
		}
		got := kp.Public()
		kp.Close()
		if got.ID != p.ID || !bytes.Equal(got.Ed25519, p.Ed25519) || !got.MLDSA65.Equal(p.MLDSA65) {
			t.Errorf("key %s: its seeds make key %s, keys.json says %s", kv.Name, got.ID, p.ID)
		}
		if hex.EncodeToString(p.Ed25519) != kv.Ed25519Public || hex.EncodeToString(p.MLDSA65.Bytes()) != kv.MLDSA65Public {
			t.Errorf("key %s: hex and base64 public keys differ", kv.Name)
		}
		if fp := signer.KeyFingerprint(p.Ed25519, p.MLDSA65); fp != kv.Fingerprint || fp[:16] != p.ID[len(p.ID)-16:] {
			t.Errorf("key %s: fingerprint %s, key id %s, want %s", kv.Name, fp, p.ID, kv.Fingerprint)
		}
		out[p.ID] = p
	}
	return out
}

// verifierFor builds the verifier a vector describes.
func verifierFor(t testing.TB, keys map[string]signer.PublicKey, v vectors.Verify) (*signer.Verifier, time.Time, []byte) {
	t.Helper()
	var trusted []signer.PublicKey
	for _, id := range v.TrustedKeys {
		k, ok := keys[id]
		if !ok {
			t.Fatalf("trusted key %s is not in keys.json", id)
		}
		trusted = append(trusted, k)
	}
	ver := signer.NewVerifier(trusted)
	ver.Production, ver.Ed25519Only = v.Production, v.Ed25519Only
	ver.MaxAge = time.Duration(v.MaxAgeSeconds) * time.Second
	now, err := time.Parse(time.RFC3339Nano, v.Now)
	if err != nil {
		t.Fatal(err)
	}
	var nonce []byte
	if v.Nonce != nil {
		if nonce, err = hex.DecodeString(*v.Nonce); err != nil {
			t.Fatal(err)
		}
		if nonce == nil {
			nonce = []byte{}
		}
	}
	return ver, now, nonce
}

func positives(t testing.TB) []vectors.Vector {
	t.Helper()
	pos := readVector[vectors.PositiveFile](t, vectors.PositiveName)
	batch := readVector[vectors.BatchFile](t, vectors.BatchName)
	all := append(pos.Vectors, batch.Responses...)
	if len(all) < 8 {
		t.Fatalf("only %d positive vectors", len(all))
	}
	return all
}

func TestPositiveVectors(t *testing.T) {
	keys := testKeys(t)
	for _, vec := range positives(t) {
		t.Run(vec.Name, func(t *testing.T) {
			msg, err := hex.DecodeString(vec.SignedBytes)
			if err != nil {
				t.Fatal(err)
			}
			got, fields, err := decodeSignedBytes(msg)
			if err != nil {
				t.Fatalf("signed bytes do not follow the documented layout: %v", err)
			}
			if want := claimsOf(t, vec.Claims); !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded signed bytes\n got %+v\nwant %+v", got, want)
			}
			var joined string
			for i, f := range vec.Fields {
				if i >= len(fields) || f.Name != fields[i].name || f.Hex != hex.EncodeToString(fields[i].b) {
					t.Fatalf("signed_bytes_fields[%d] = %s %s, the layout says otherwise", i, f.Name, f.Hex)
				}
				joined += f.Hex
			}
			if joined != vec.SignedBytes {
				t.Fatal("signed_bytes_fields do not add up to signed_bytes_hex")
			}
			enc, err := got.SignedBytes()
			if err != nil || !bytes.Equal(enc, msg) {
				t.Fatalf("production encoding of the claims differs: %x, %v", enc, err)
			}
			a := vec.Attestation
			nonce, _ := hex.DecodeString(a.Nonce)
			if leaf := signer.LeafHash(nonce); hex.EncodeToString(leaf[:]) != vec.MerkleLeaf {
				t.Fatalf("merkle leaf %x, vector says %s", leaf, vec.MerkleLeaf)
			}
			k := keys[a.KeyID]
			edSig, _ := base64.StdEncoding.DecodeString(a.Signatures.Ed25519)
			if !ed25519.Verify(k.Ed25519, msg, edSig) {
				t.Fatal("ed25519 signature does not verify over signed_bytes_hex")
			}
			if !vec.Verify.Ed25519Only {
				mlSig, _ := base64.StdEncoding.DecodeString(a.Signatures.MLDSA65)
				if !mldsa65.Verify(k.MLDSA65, msg, nil, mlSig) {
					t.Fatal("ml-dsa-65 signature does not verify over signed_bytes_hex")
				}
			}
			v, now, want := verifierFor(t, keys, vec.Verify)
			if err := v.Verify(&a, now, want); err != nil {
				t.Fatalf("production verifier: %v", err)
			}
		})
	}
}

// checkError fails unless err is of the vector's error class.
func checkError(t *testing.T, err error, class string) {
	t.Helper()
	want, stale := errorFor(t, class)
	var se *signer.StaleAttestation
	switch {
	case stale && !errors.As(err, &se):
		t.Fatalf("err %v, want StaleAttestation", err)
	case !stale && !errors.Is(err, want):
		t.Fatalf("err %v, want %v", err, want)
	}
}

func errorFor(t *testing.T, class string) (error, bool) {
	t.Helper()
	switch class {
	case vectors.ErrMalformed:
		return signer.ErrMalformed, false
	case vectors.ErrSignature:
		return signer.ErrSignature, false
	case vectors.ErrUnknownKey:
		return signer.ErrUnknownKey, false
	case vectors.ErrDevelopmentKey:
		return signer.ErrDevelopmentKey, false
	case vectors.ErrKeyWindow:
		return signer.ErrKeyWindow, false
	case vectors.ErrNonce:
		return signer.ErrNonce, false
	case vectors.ErrFuture:
		return signer.ErrFuture, false
	case vectors.ErrStale:
		return nil, true
	}
	t.Fatalf("unknown error class %q", class)
	return nil, false
}

func TestNegativeVectors(t *testing.T) {
	keys := testKeys(t)
	neg := readVector[vectors.NegativeFile](t, vectors.NegativeName)
	if len(neg.Vectors) < 20 {
		t.Fatalf("only %d negative vectors", len(neg.Vectors))
	}
	for _, vec := range neg.Vectors {
		t.Run(vec.Name, func(t *testing.T) {
			v, now, nonce := verifierFor(t, keys, vec.Verify)
			a := vec.Attestation
			checkError(t, v.Verify(&a, now, nonce), vec.WantError)
		})
	}
}

func TestKeysDocumentVectors(t *testing.T) {
	keys := testKeys(t)
	docs := readVector[[]vectors.KeysDocumentVector](t, vectors.KeysDocumentsName)
	wantKeys := map[string]int{"overlap": 2, "after-rotation": 1}
	if len(docs) != len(wantKeys) {
		t.Fatalf("%d documents, want %d", len(docs), len(wantKeys))
	}
	for _, d := range docs {
		t.Run(d.Name, func(t *testing.T) {
			pubs, err := d.Document.PublicKeys()
			if err != nil {
				t.Fatal(err)
			}
			if len(pubs) != wantKeys[d.Name] {
				t.Fatalf("%d keys published, want %d", len(pubs), wantKeys[d.Name])
			}
			at, _ := time.Parse(time.RFC3339Nano, d.At)
			endorsed := 0
			for _, p := range pubs {
				k, ok := keys[p.ID]
				if !ok || !k.NotBefore.Equal(p.NotBefore) || !k.NotAfter.Equal(p.NotAfter) {
					t.Fatalf("published key %s differs from keys.json", p.ID)
				}
				if !p.NotAfter.IsZero() && at.After(p.NotAfter) {
					t.Errorf("key %s published after its window", p.ID)
				}
				if p.Endorsement == nil {
					continue
				}
				endorsed++
				msg, err := signer.EndorsementBytes(p.Endorsement.EndorserID, p)
				if err != nil {
					t.Fatal(err)
				}
				i := slices.IndexFunc(d.Endorsements, func(e vectors.EndorsementVector) bool { return e.KeyID == p.ID })
				if i < 0 || d.Endorsements[i].SignedBytes != hex.EncodeToString(msg) || d.Endorsements[i].EndorserKeyID != p.Endorsement.EndorserID {
					t.Fatalf("endorsement bytes of %s are not in the vector", p.ID)
				}
				if err := signer.VerifyEndorsement(keys[p.Endorsement.EndorserID], p); err != nil {
					t.Fatalf("endorsement: %v", err)
				}
				forged := p
				e := *p.Endorsement
				e.Ed25519 = slices.Clone(e.Ed25519)
				e.Ed25519[0] ^= 1
				forged.Endorsement = &e
				if err := signer.VerifyEndorsement(keys[e.EndorserID], forged); !errors.Is(err, signer.ErrSignature) {
					t.Fatalf("a flipped endorsement bit: %v, want ErrSignature", err)
				}
			}
			if endorsed != 1 || len(d.Endorsements) != 1 {
				t.Fatalf("%d endorsed keys, %d endorsement vectors, want 1", endorsed, len(d.Endorsements))
			}
		})
	}
}

func TestBatchVector(t *testing.T) {
	b := readVector[vectors.BatchFile](t, vectors.BatchName)
	if len(b.Nonces) < 3 || len(b.Nonces)%2 == 0 || len(b.Responses) != len(b.Nonces) {
		t.Fatalf("want an odd batch of at least 3 with a response each: %d nonces, %d responses", len(b.Nonces), len(b.Responses))
	}
	leaves := make([][32]byte, len(b.Nonces))
	for i, n := range b.Nonces {
		raw, _ := hex.DecodeString(n)
		leaves[i] = signer.LeafHash(raw)
		if hex.EncodeToString(leaves[i][:]) != b.Levels[0][i] {
			t.Fatalf("leaf %d differs from levels_hex", i)
		}
	}
	root, paths := signer.BuildTree(leaves)
	if hex.EncodeToString(root[:]) != b.Root || b.Levels[len(b.Levels)-1][0] != b.Root {
		t.Fatalf("root %x, vector says %s", root, b.Root)
	}
	for i, r := range b.Responses {
		if r.Attestation.Merkle.Index != uint64(i) || len(r.Attestation.Merkle.Path) != len(paths[i]) || len(paths[i]) != len(b.Levels)-1 {
			t.Fatalf("response %d: index %d, path of %d", i, r.Attestation.Merkle.Index, len(r.Attestation.Merkle.Path))
		}
		for j, p := range paths[i] {
			if r.Attestation.Merkle.Path[j] != hex.EncodeToString(p[:]) {
				t.Fatalf("response %d: path[%d] differs from BuildTree", i, j)
			}
		}
		if got := signer.RootFromPath(leaves[i], uint64(i), paths[i]); got != root || r.Claims.MerkleRoot != b.Root {
			t.Fatalf("response %d: root from path %x", i, got)
		}
		if r.Attestation.Signatures != b.Responses[0].Attestation.Signatures || r.Attestation.Sequence != b.Responses[0].Attestation.Sequence {
			t.Fatalf("response %d: not the batch's one signature", i)
		}
	}
}

// TestDocWalkThrough keeps the walk-through in docs/ATTESTATION.md in
// step with the vectors: every value it quotes from single-nonce must be
// the generated one.
func TestDocWalkThrough(t *testing.T) {
	doc, err := os.ReadFile("../docs/ATTESTATION.md")
	if err != nil {
		t.Fatal(err)
	}
	var vec vectors.Vector
	for _, v := range positives(t) {
		if v.Name == "single-nonce" {
			vec = v
		}
	}
	a := vec.Attestation
	edSig, _ := base64.StdEncoding.DecodeString(a.Signatures.Ed25519)
	quoted := []string{a.KeyID, hex.EncodeToString(testKeys(t)[a.KeyID].Ed25519), a.Nonce, vec.MerkleLeaf,
		a.Timestamp, vec.Verify.Now, hex.EncodeToString(edSig[:8]), strconv.FormatInt(a.TimestampUnixNs, 10),
		strconv.Itoa(len(vec.SignedBytes) / 2)}
	for _, f := range vec.Fields {
		quoted = append(quoted, "`"+f.Hex+"`")
	}
	for _, q := range quoted {
		if !bytes.Contains(doc, []byte(q)) {
			t.Errorf("docs/ATTESTATION.md does not quote %s from single-nonce: update the walk-through", q)
		}
	}
}

// BenchmarkVerifyVector measures the production verifier on the
// single-nonce vector: the whole check (parse, Merkle root, encoding,
// signatures, window, age) in hybrid and in Ed25519-only mode.
func BenchmarkVerifyVector(b *testing.B) {
	keys := testKeys(b)
	var vec vectors.Vector
	for _, v := range positives(b) {
		if v.Name == "single-nonce" {
			vec = v
		}
	}
	for _, edOnly := range []bool{false, true} {
		name := "hybrid"
		if edOnly {
			name = "ed25519-only"
		}
		b.Run(name, func(b *testing.B) {
			v, now, nonce := verifierFor(b, keys, vec.Verify)
			v.Ed25519Only = edOnly
			for b.Loop() {
				if err := v.Verify(&vec.Attestation, now, nonce); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
		})
	}
}
