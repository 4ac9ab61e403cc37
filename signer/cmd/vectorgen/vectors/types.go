package vectors

import "github.com/aunsorm/timenode/signer"

// Error classes a negative vector expects; signer's tests map each to its
// sentinel error (StaleAttestation for ErrStale).
const (
	ErrMalformed      = "malformed"
	ErrSignature      = "signature"
	ErrUnknownKey     = "unknown_key"
	ErrDevelopmentKey = "development_key"
	ErrKeyWindow      = "key_window"
	ErrNonce          = "nonce"
	ErrStale          = "stale"
	ErrFuture         = "future"
)

// File is one vector file: its name in testdata/attestation and contents.
type File struct {
	Name string
	Data []byte
}

// KeysFile is keys.json: the test keys.
type KeysFile struct {
	Warning string      `json:"warning"`
	Keys    []KeyVector `json:"keys"`
}

// KeyVector is one test key: how its seeds were made, the seeds, and its
// public half in the /keys format with the window a verifier uses.
type KeyVector struct {
	Name             string         `json:"name"`
	Role             string         `json:"role"`
	TestOnly         bool           `json:"test_only"`
	Ed25519SeedLabel string         `json:"ed25519_seed_label"` // seed = SHA-256(label)
	Ed25519Seed      string         `json:"ed25519_seed_hex"`
	MLDSA65SeedLabel string         `json:"ml_dsa_65_seed_label"`
	MLDSA65Seed      string         `json:"ml_dsa_65_seed_hex"`
	Ed25519Public    string         `json:"ed25519_public_hex"`
	MLDSA65Public    string         `json:"ml_dsa_65_public_hex"`
	Fingerprint      string         `json:"key_fingerprint"` // SHA-256(ed25519 || ml-dsa-65), hex
	Public           signer.KeyJSON `json:"public"`
}

// KeysDocumentVector is one /keys document as served at a time, with the
// bytes each endorsement in it signs.
type KeysDocumentVector struct {
	Name         string              `json:"name"`
	Description  string              `json:"description"`
	At           string              `json:"at"`
	Document     signer.KeysDocument `json:"document"`
	Endorsements []EndorsementVector `json:"endorsements"`
}

// EndorsementVector gives the exact bytes of one endorsement.
type EndorsementVector struct {
	KeyID         string `json:"key_id"`
	EndorserKeyID string `json:"endorser_key_id"`
	SignedBytes   string `json:"signed_bytes_hex"`
}

// Verify is how a verifier checks a vector: its clock, the nonce it sent
// (null: it checks none), the keys it trusts (ids from keys.json, with
// their windows) and its mode.
type Verify struct {
	Now           string   `json:"now"`
	Nonce         *string  `json:"nonce_hex"`
	TrustedKeys   []string `json:"trusted_keys"`
	Production    bool     `json:"production"`
	Ed25519Only   bool     `json:"ed25519_only"`
	MaxAgeSeconds int      `json:"max_age_seconds"`
}

// Claims are the signed fields, as the verifier rebuilds them. Like the
// attestation (format version 2 on), they carry timestamp_unix_ns as a
// string; integrity is null when the node runs no integrity checks.
type Claims struct {
	Version         uint8  `json:"version"`
	AuthorityID     string `json:"authority_id"`
	Stratum         uint8  `json:"stratum"`
	TimestampUnixNs int64  `json:"timestamp_unix_ns,string"`
	ErrorBoundNs    int64  `json:"error_bound_ns"`
	ClockState      string `json:"clock_state"`
	Leap            string `json:"leap"`
	Sequence        uint64 `json:"sequence"`
	KeyID           string `json:"key_id"`
	Development     bool   `json:"development"`
	MerkleRoot      string `json:"merkle_root_hex"`
	// Integrity is the signed integrity field (format version 3).
	Integrity *signer.Integrity `json:"integrity"`
}

// Field is one field of the signed bytes, in order.
type Field struct {
	Name string `json:"field"`
	Hex  string `json:"hex"`
}

// Vector is a positive vector: an attestation as served that verifies
// under Verify, with every intermediate value of the check.
type Vector struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Verify      Verify             `json:"verify"`
	MerkleLeaf  string             `json:"merkle_leaf_hex"`
	Claims      Claims             `json:"claims"`
	SignedBytes string             `json:"signed_bytes_hex"`
	Fields      []Field            `json:"signed_bytes_fields"`
	Attestation signer.Attestation `json:"attestation"`
}

// PositiveFile is positive.json.
type PositiveFile struct {
	Vectors []Vector `json:"vectors"`
}

// BatchFile is batch.json: one signature over a Merkle tree of several
// nonces, every level of the tree, and each response.
type BatchFile struct {
	Description string     `json:"description"`
	Nonces      []string   `json:"nonces_hex"`
	Levels      [][]string `json:"levels_hex"` // leaves first, root last
	Root        string     `json:"root_hex"`
	Responses   []Vector   `json:"responses"`
}

// Negative is a vector that must fail, with the error class expected.
type Negative struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Base        string             `json:"base"` // the positive vector it was derived from
	Verify      Verify             `json:"verify"`
	WantError   string             `json:"want_error"`
	Attestation signer.Attestation `json:"attestation"`
}

// NegativeFile is negative.json.
type NegativeFile struct {
	Vectors []Negative `json:"vectors"`
}
