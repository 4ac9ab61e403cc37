package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

func init() {
	g := registerGroup("keys", "generate signing keys and certificate requests", 10)
	g.addLeaf("generate", leaf{args: noArgs,
		summary: "new Ed25519 + ML-DSA-65 signing keys (PKCS#8 PEM, mode 0600)",
		help: `From the OS CSPRNG with $AUNSORM_NATIVE_RNG_SEED_PATH mixed in when set;
written as one unit, and what an interrupted run left is removed first.`,
		flags: func(fs *flag.FlagSet) runFunc {
			dir, next := keyDirFlags(fs)
			force, ifMissing := keepFlags(fs, "key pair")
			return func(_ []string, stdout, stderr io.Writer) int {
				const prog = "timenodectl keys generate"
				if code := needDir(stderr, prog, *dir, *force, *ifMissing); code != 0 {
					return code
				}
				if err := generateKeys(*dir, keyPrefix(*next), *force, *ifMissing, stdout); err != nil {
					return fail(stderr, prog, err)
				}
				return 0
			}
		}})
	g.addLeaf("roughtime", leaf{args: noArgs,
		summary: "the Roughtime long-term Ed25519 key (roughtime-ed25519.pem, mode 0600)",
		help:    "Prints the public key Roughtime clients are configured with.",
		flags: func(fs *flag.FlagSet) runFunc {
			dir := fs.String("dir", "", "key directory `DIR` (required)")
			force, ifMissing := keepFlags(fs, "key")
			return func(_ []string, stdout, stderr io.Writer) int {
				const prog = "timenodectl keys roughtime"
				if code := needDir(stderr, prog, *dir, *force, *ifMissing); code != 0 {
					return code
				}
				if err := generateRoughtimeKey(*dir, *force, *ifMissing, stdout); err != nil {
					return fail(stderr, prog, err)
				}
				return 0
			}
		}})
	g.addLeaf("csr", leaf{args: noArgs,
		summary: `a certificate request for the keys in DIR, for "timenodectl ca issue"`,
		flags: func(fs *flag.FlagSet) runFunc {
			dir, next := keyDirFlags(fs)
			cn := fs.String("cn", "", "certificate subject common name, e.g. the authority id (required)")
			out := fs.String("out", "", "output `FILE` (default stdout)")
			return func(_ []string, stdout, stderr io.Writer) int {
				const prog = "timenodectl keys csr"
				if *dir == "" || *cn == "" {
					return usageErr(stderr, prog, "--dir and --cn are required")
				}
				pemCSR, err := makeCSR(*dir, keyPrefix(*next), *cn)
				if err != nil {
					return fail(stderr, prog, err)
				}
				return writeOut(*out, pemCSR, 0o644, stdout, stderr)
			}
		}})
}

// keyDirFlags declares --dir and --next, which every signing-key command
// takes.
func keyDirFlags(fs *flag.FlagSet) (dir *string, next *bool) {
	return fs.String("dir", "", "key directory `DIR` (required)"),
		fs.Bool("next", false, "the next key of a rotation (files prefixed next-)")
}

// keepFlags declares --force and --if-missing for a command that makes
// what.
func keepFlags(fs *flag.FlagSet, what string) (force, ifMissing *bool) {
	return fs.Bool("force", false, "overwrite an existing "+what),
		fs.Bool("if-missing", false, "keep a complete "+what+" in place (exit 0)")
}

// needDir checks the flags every key-making command shares.
func needDir(stderr io.Writer, prog, dir string, force, ifMissing bool) int {
	switch {
	case dir == "":
		return usageErr(stderr, prog, "--dir is required")
	case force && ifMissing:
		return usageErr(stderr, prog, "--force and --if-missing contradict each other")
	}
	return 0
}

func keyPrefix(next bool) string {
	if next {
		return signer.NextPrefix
	}
	return ""
}

// generateKeys writes a key pair into dir as one unit (see
// keyfile.GeneratePair), owned by the directory's owner when root runs it,
// and reports what an interrupted earlier run left and was removed. With
// ifMissing a complete pair in place is kept and reported (the first-boot
// unit runs again after any of its steps failed).
func generateKeys(dir, prefix string, force, ifMissing bool, stdout io.Writer) error {
	if ifMissing && !force {
		if st, err := keyfile.State(dir, prefix); err == nil && st == keyfile.PairComplete {
			fmt.Fprintf(stdout, "kept the key pair in %s\n", dir)
			return nil
		}
	}
	var extra []byte
	if p := os.Getenv("AUNSORM_NATIVE_RNG_SEED_PATH"); p != "" {
		b, err := keyfile.ReadSeedFile(p, keyfile.DefaultPolicy())
		if err != nil {
			return fmt.Errorf("AUNSORM_NATIVE_RNG_SEED_PATH: %w", err)
		}
		defer clear(b)
		extra = b
	}
	o := keyfile.GenerateOptions{Prefix: prefix, Extra: extra, Overwrite: force}
	if uid, gid, ok := dirOwner(dir); ok && os.Geteuid() == 0 && uid != 0 {
		o.UID, o.GID = uid, gid
	}
	rec, err := keyfile.GeneratePair(dir, rand.Reader, o)
	for _, p := range rec.Removed {
		fmt.Fprintf(stdout, "removed %s, left by an interrupted key generation\n", p)
	}
	if errors.Is(err, keyfile.ErrPairExists) {
		return fmt.Errorf("%s exists (use --force to replace it, --if-missing to keep it)", filepath.Join(dir, prefix+signer.Ed25519KeyFile))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", filepath.Join(dir, prefix+signer.MLDSA65KeyFile), filepath.Join(dir, prefix+signer.Ed25519KeyFile))
	return nil
}

// dirOwner returns the owner of dir.
func dirOwner(dir string) (uid, gid int, ok bool) {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// keyPolicy is the file policy for reading keys in dir: root reads the
// files of the directory's owner (the daemon's user), anyone else only
// their own.
func keyPolicy(dir string) keyfile.Policy {
	p := keyfile.DefaultPolicy()
	if uid, _, ok := dirOwner(dir); ok && os.Geteuid() == 0 {
		p.UID = uid
	}
	return p
}

func makeCSR(dir, prefix, cn string) ([]byte, error) {
	var seeds [2]*lockedmem.Buffer
	for i, alg := range []keyfile.Alg{keyfile.Ed25519, keyfile.MLDSA65} {
		b, err := keyfile.LoadSeed(filepath.Join(dir, prefix+keyfile.FileName(alg)), alg, keyPolicy(dir), lockedmem.Options{})
		if err != nil {
			return nil, err
		}
		defer b.Close()
		seeds[i] = b
	}
	kp, err := signer.NewKeyPair(seeds[0].Bytes(), seeds[1].Bytes(), signer.KeyOptions{})
	if err != nil {
		return nil, err
	}
	defer kp.Close()
	der, err := signer.CreateCSR(kp, cn)
	if err != nil {
		return nil, err
	}
	return pemBlock("CERTIFICATE REQUEST", der), nil
}

func writeOut(path string, data []byte, mode os.FileMode, stdout, stderr io.Writer) int {
	if path == "" {
		stdout.Write(data)
		return 0
	}
	if err := keyfile.WriteAtomic(path, data, mode); err != nil {
		fmt.Fprintf(stderr, "timenodectl: %v\n", err)
		return 1
	}
	return 0
}

// generateRoughtimeKey makes the Roughtime long-term key in dir (kept with
// ifMissing), owned by the directory's owner when root runs it, and prints
// its public key in base64, the form Roughtime clients are configured with.
func generateRoughtimeKey(dir string, force, ifMissing bool, stdout io.Writer) error {
	path := filepath.Join(dir, signer.RoughtimeKeyFile)
	o := keyfile.GenerateOptions{Overwrite: force}
	if uid, gid, ok := dirOwner(dir); ok && os.Geteuid() == 0 && uid != 0 {
		o.UID, o.GID = uid, gid
	}
	err := keyfile.GenerateKeyFile(path, keyfile.Ed25519, rand.Reader, o)
	switch {
	case errors.Is(err, keyfile.ErrKeyExists) && ifMissing:
		fmt.Fprintf(stdout, "kept %s\n", path)
	case errors.Is(err, keyfile.ErrKeyExists):
		return fmt.Errorf("%s exists (use --force to replace it, --if-missing to keep it)", path)
	case err != nil:
		return err
	default:
		fmt.Fprintf(stdout, "wrote %s\n", path)
	}
	key, err := signer.LoadLockedEd25519(path, keyPolicy(dir), lockedmem.Options{})
	if key == nil {
		return err
	}
	defer key.Close()
	fmt.Fprintf(stdout, "public key (base64): %s\n", base64.StdEncoding.EncodeToString(key.Public()))
	return nil
}
