package signer

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// KeysDocument is the JSON served on /keys: every public key currently
// valid, with its window.
type KeysDocument struct {
	AuthorityID string    `json:"authority_id"`
	Keys        []KeyJSON `json:"keys"`
}

// KeyJSON is one published key. Key bytes are standard base64: Ed25519 as
// its 32 raw bytes, ML-DSA-65 as its 1952-byte FIPS 204 encoding.
type KeyJSON struct {
	KeyID       string `json:"key_id"`
	Development bool   `json:"development"`
	Ed25519     string `json:"ed25519"`
	MLDSA65     string `json:"ml_dsa_65"`
	NotBefore   string `json:"not_before"`          // RFC 3339
	NotAfter    string `json:"not_after,omitempty"` // RFC 3339; absent: no end
	// CertificateChain is the attestation certificate chain, standard
	// base64 DER, node certificate first; its first element's SHA-256 is
	// the calibration fingerprint. Absent for development keys without one.
	CertificateChain []string `json:"certificate_chain,omitempty"`
	// Endorsement is present on a key that a rotation introduces: both
	// signatures of the endorsing (older) key over EndorsementBytes.
	Endorsement *EndorsementJSON `json:"endorsement,omitempty"`
}

// EndorsementJSON is an Endorsement as published.
type EndorsementJSON struct {
	EndorserKeyID string `json:"endorser_key_id"`
	Ed25519       string `json:"ed25519"`   // signature, standard base64
	MLDSA65       string `json:"ml_dsa_65"` // signature, standard base64
}

// NewKeysDocument renders keys for publication.
func NewKeysDocument(authority string, keys []PublicKey) KeysDocument {
	doc := KeysDocument{AuthorityID: authority, Keys: []KeyJSON{}}
	for _, k := range keys {
		j := KeyJSON{
			KeyID: k.ID, Development: k.Development,
			Ed25519:   base64.StdEncoding.EncodeToString(k.Ed25519),
			MLDSA65:   base64.StdEncoding.EncodeToString(k.MLDSA65.Bytes()),
			NotBefore: k.NotBefore.UTC().Format(time.RFC3339Nano),
		}
		if !k.NotAfter.IsZero() {
			j.NotAfter = k.NotAfter.UTC().Format(time.RFC3339Nano)
		}
		for _, c := range k.Chain {
			j.CertificateChain = append(j.CertificateChain, base64.StdEncoding.EncodeToString(c))
		}
		if e := k.Endorsement; e != nil {
			j.Endorsement = &EndorsementJSON{EndorserKeyID: e.EndorserID,
				Ed25519: base64.StdEncoding.EncodeToString(e.Ed25519), MLDSA65: base64.StdEncoding.EncodeToString(e.MLDSA65)}
		}
		doc.Keys = append(doc.Keys, j)
	}
	return doc
}

// PublicKeys parses the document's keys, checking that each id matches its
// key bytes.
func (d KeysDocument) PublicKeys() ([]PublicKey, error) {
	out := make([]PublicKey, 0, len(d.Keys))
	for i, j := range d.Keys {
		ed, err := base64.StdEncoding.DecodeString(j.Ed25519)
		if err != nil || len(ed) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("signer: keys[%d] (%s): bad ed25519 key", i, j.KeyID)
		}
		mlb, err := base64.StdEncoding.DecodeString(j.MLDSA65)
		if err != nil {
			return nil, fmt.Errorf("signer: keys[%d] (%s): ml-dsa-65 key is not base64", i, j.KeyID)
		}
		ml := new(mldsa65.PublicKey)
		if err := ml.UnmarshalBinary(mlb); err != nil {
			return nil, fmt.Errorf("signer: keys[%d] (%s): ml-dsa-65 key: %w", i, j.KeyID, err)
		}
		if id := KeyID(ed, ml, j.Development); id != j.KeyID {
			return nil, fmt.Errorf("signer: keys[%d]: key id %q does not match its keys (%q)", i, j.KeyID, id)
		}
		k := PublicKey{ID: j.KeyID, Development: j.Development, Ed25519: ed, MLDSA65: ml}
		if k.NotBefore, err = time.Parse(time.RFC3339Nano, j.NotBefore); err != nil {
			return nil, fmt.Errorf("signer: keys[%d] (%s): not_before: %w", i, j.KeyID, err)
		}
		if j.NotAfter != "" {
			if k.NotAfter, err = time.Parse(time.RFC3339Nano, j.NotAfter); err != nil {
				return nil, fmt.Errorf("signer: keys[%d] (%s): not_after: %w", i, j.KeyID, err)
			}
		}
		for n, c := range j.CertificateChain {
			der, err := base64.StdEncoding.DecodeString(c)
			if err != nil {
				return nil, fmt.Errorf("signer: keys[%d] (%s): certificate_chain[%d] is not base64", i, j.KeyID, n)
			}
			k.Chain = append(k.Chain, der)
		}
		if e := j.Endorsement; e != nil {
			ed, err1 := base64.StdEncoding.DecodeString(e.Ed25519)
			ml, err2 := base64.StdEncoding.DecodeString(e.MLDSA65)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("signer: keys[%d] (%s): endorsement signature is not base64", i, j.KeyID)
			}
			k.Endorsement = &Endorsement{EndorserID: e.EndorserKeyID, Ed25519: ed, MLDSA65: ml}
		}
		out = append(out, k)
	}
	return out, nil
}
