// Package vectors builds the attestation test vectors of
// docs/ATTESTATION.md from fixed test seeds, with the production signer
// code: the test keys (seeds included: they are public and for tests
// only), the /keys documents of a rotation, positive attestations, a
// Merkle batch and negative vectors with the error a verifier must report.
//
// Files is deterministic: Ed25519 is deterministic and ML-DSA-65 signs in
// its deterministic variant, so the same code always yields the same
// bytes. The command signer/cmd/vectorgen writes the files; signer's tests
// compare them with a fresh Files.
package vectors
