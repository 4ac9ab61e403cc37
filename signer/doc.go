// Package signer holds the node's signing keys and produces and verifies
// time attestations. Every attestation carries two signatures over the same
// bytes: Ed25519 and ML-DSA-65 (FIPS 204). The signed bytes are defined in
// docs/ATTESTATION.md: a domain-separation prefix, then the fields in a
// fixed binary encoding, ending in the root of a Merkle tree over the
// batch's nonces, so that one signature can serve many requests.
package signer
