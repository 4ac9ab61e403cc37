// Command vectorgen writes the attestation test vectors of
// docs/ATTESTATION.md into a directory (testdata/attestation). It is run
// by go generate in package signer:
//
//	go run ./cmd/vectorgen -out ../testdata/attestation
//
// The vectors are made from fixed, public test seeds by the production
// signing code, so running it twice writes the same bytes; signer's tests
// regenerate them in-process and fail if the committed files differ.
package main
