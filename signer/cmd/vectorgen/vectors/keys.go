package vectors

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aunsorm/timenode/signer"
)

// Fixed instants of the vectors. Key A is the current key for a quarter,
// key B the next one, introduced during A's last fortnight; T is when
// most vectors are signed (both keys published, A active), R is after
// the rotation (B active, A retired).
var (
	aNotBefore = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	aNotAfter  = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	bNotBefore = time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)
	bNotAfter  = time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC)
	atT        = time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	atR        = time.Date(2027, 1, 15, 8, 30, 0, 987654321, time.UTC)
)

// keySpec describes a test key; its seeds are SHA-256 of fixed labels.
type keySpec struct {
	name, role          string
	dev                 bool
	notBefore, notAfter time.Time
}

var specs = []keySpec{
	{"A", "current production key (no certificate in the vectors); endorses B", false, aNotBefore, aNotAfter},
	{"B", "next production key of the rotation, endorsed by A", false, bNotBefore, bNotAfter},
	{"D", "development key (key id prefixed dev-)", true, atT.Add(-time.Hour), atT.Add(23 * time.Hour)},
}

func seedLabel(key, alg string) string {
	return "timenode attestation test vector key " + key + " " + alg + " seed (TEST ONLY)"
}

func seed(label string) []byte {
	s := sha256.Sum256([]byte(label))
	return s[:]
}

// keys holds the test key pairs; Close wipes them.
type keys struct {
	pairs map[string]*signer.KeyPair
	// unbounded are copies of A and B without a window: the same key
	// material and key ids, used to sign outside the published windows.
	unbounded map[string]*signer.KeyPair
	set       *signer.KeySet // A then B, B endorsed by A
}

func newKeys() (*keys, error) {
	k := &keys{pairs: map[string]*signer.KeyPair{}, unbounded: map[string]*signer.KeyPair{}}
	for _, s := range specs {
		kp, err := pairOf(s.name, signer.KeyOptions{Development: s.dev, NotBefore: s.notBefore, NotAfter: s.notAfter})
		if err != nil {
			k.Close()
			return nil, err
		}
		k.pairs[s.name] = kp
		if !s.dev {
			if k.unbounded[s.name], err = pairOf(s.name, signer.KeyOptions{}); err != nil {
				k.Close()
				return nil, err
			}
		}
	}
	set, err := signer.NewKeySet(k.pairs["A"], k.pairs["B"])
	if err != nil {
		k.Close()
		return nil, err
	}
	k.set = set
	return k, nil
}

func pairOf(name string, opts signer.KeyOptions) (*signer.KeyPair, error) {
	kp, err := signer.NewKeyPair(seed(seedLabel(name, "ed25519")), seed(seedLabel(name, "ml-dsa-65")), opts)
	if err != nil {
		return nil, fmt.Errorf("vectors: key %s: %w", name, err)
	}
	return kp, nil
}

// Close wipes every key pair.
func (k *keys) Close() error {
	var errs []error
	for _, m := range []map[string]*signer.KeyPair{k.pairs, k.unbounded} {
		for _, kp := range m {
			errs = append(errs, kp.Close())
		}
	}
	return errors.Join(errs...)
}

func (k *keys) file() KeysFile {
	f := KeysFile{Warning: "TEST KEYS ONLY: the seeds below are public. Never use these keys, or keys made from these labels, outside tests."}
	for _, s := range specs {
		pub := k.pairs[s.name].Public()
		f.Keys = append(f.Keys, KeyVector{
			Name: s.name, Role: s.role, TestOnly: true,
			Ed25519SeedLabel: seedLabel(s.name, "ed25519"),
			Ed25519Seed:      hex.EncodeToString(seed(seedLabel(s.name, "ed25519"))),
			MLDSA65SeedLabel: seedLabel(s.name, "ml-dsa-65"),
			MLDSA65Seed:      hex.EncodeToString(seed(seedLabel(s.name, "ml-dsa-65"))),
			Ed25519Public:    hex.EncodeToString(pub.Ed25519),
			MLDSA65Public:    hex.EncodeToString(pub.MLDSA65.Bytes()),
			Fingerprint:      signer.KeyFingerprint(pub.Ed25519, pub.MLDSA65),
			Public:           signer.NewKeysDocument("", []signer.PublicKey{withoutEndorsement(pub)}).Keys[0],
		})
	}
	return f
}

// withoutEndorsement keeps keys.json about the key alone; the
// endorsement is in the /keys documents.
func withoutEndorsement(p signer.PublicKey) signer.PublicKey {
	p.Endorsement = nil
	return p
}

func (k *keys) documents() ([]KeysDocumentVector, error) {
	var out []KeysDocumentVector
	for _, d := range []struct {
		name, desc string
		at         time.Time
	}{
		{"overlap", "during the rotation: A (active) and B (next, endorsed by A) both published", atT},
		{"after-rotation", "after A's window: A retired and no longer published, B active", atR},
	} {
		pubs := k.set.Published(d.at)
		v := KeysDocumentVector{Name: d.name, Description: d.desc, At: d.at.Format(time.RFC3339Nano),
			Document: signer.NewKeysDocument(authority, pubs), Endorsements: []EndorsementVector{}}
		for _, p := range pubs {
			if p.Endorsement == nil {
				continue
			}
			msg, err := signer.EndorsementBytes(p.Endorsement.EndorserID, p)
			if err != nil {
				return nil, err
			}
			v.Endorsements = append(v.Endorsements, EndorsementVector{KeyID: p.ID,
				EndorserKeyID: p.Endorsement.EndorserID, SignedBytes: hex.EncodeToString(msg)})
		}
		out = append(out, v)
	}
	return out, nil
}
