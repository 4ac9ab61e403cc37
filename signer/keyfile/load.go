package keyfile

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/aunsorm/timenode/signer/lockedmem"
)

// Credential names of the key files in $CREDENTIALS_DIRECTORY (and the
// file names in a key directory).
const (
	Ed25519File = "signing-ed25519.pem"
	MLDSA65File = "signing-mldsa65.pem"
)

// FileName returns the standard file name of alg's key.
func FileName(alg Alg) string {
	if alg == Ed25519 {
		return Ed25519File
	}
	return MLDSA65File
}

// LoadSeed reads path under policy p and returns alg's seed in locked
// memory (see lockedmem.Options for what a failed mlock does).
func LoadSeed(path string, alg Alg, p Policy, lock lockedmem.Options) (*lockedmem.Buffer, error) {
	data, err := ReadSecret(path, p)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	seed, err := ParsePEM(path, data, alg)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	buf, err := lockedmem.New(SeedSize, lock)
	if buf == nil {
		return nil, fmt.Errorf("keyfile: %s: %w", path, err)
	}
	copy(buf.Bytes(), seed)
	return buf, err
}

// DeriveSeed makes a fresh 32-byte seed for alg: 32 bytes from rng (the OS
// CSPRNG) are the HKDF-SHA256 input key material, the contents of the
// optional seed file (extra, may be nil) are appended to it, and the
// algorithm names the output (info). extra can only add entropy: without
// the rng bytes the output is unknown to whoever knows the seed file.
func DeriveSeed(rng io.Reader, extra []byte, alg Alg) ([]byte, error) {
	ikm := make([]byte, 32, 32+len(extra))
	defer func() { clear(ikm) }()
	if _, err := io.ReadFull(rng, ikm); err != nil {
		return nil, fmt.Errorf("keyfile: derive %s seed: read OS random: %w", alg, err)
	}
	ikm = append(ikm, extra...)
	seed, err := hkdf.Key(sha256.New, ikm, []byte("timenode keygen v1"), "timenode "+alg.String()+" seed", SeedSize)
	if err != nil {
		return nil, fmt.Errorf("keyfile: derive %s seed: %w", alg, err)
	}
	return seed, nil
}

// ReadSeedFile reads the optional seed file (AUNSORM_NATIVE_RNG_SEED_PATH)
// under the same checks as a key; it must hold at least 32 bytes.
func ReadSeedFile(path string, p Policy) ([]byte, error) {
	b, err := ReadSecret(path, p)
	if err != nil {
		return nil, err
	}
	if len(b) < 32 {
		clear(b)
		return nil, fmt.Errorf("keyfile: seed file %s: %d bytes, want at least 32", path, len(b))
	}
	return b, nil
}
