package signer

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

// File names of a key set, in a key directory or $CREDENTIALS_DIRECTORY.
// The next key of a rotation uses the same names prefixed with NextPrefix.
const (
	Ed25519KeyFile = keyfile.Ed25519File // signing-ed25519.pem
	MLDSA65KeyFile = keyfile.MLDSA65File // signing-mldsa65.pem
	CertFile       = "attestation-cert.pem"
	NextPrefix     = "next-"
	// RoughtimeKeyFile is the Roughtime server's long-term Ed25519 key,
	// beside the signing keys (see LoadLockedEd25519).
	RoughtimeKeyFile = "roughtime-ed25519.pem"
)

// ErrNotDevelopmentKey is returned by LoadKeySet with DevelopmentOnly for
// a key that is not a development key.
var ErrNotDevelopmentKey = errors.New("signer: not a development key; simulation signs only with development keys")

// KeySet is the keys a signer holds: the current key and, during a
// rotation, the next one, endorsed by the current one.
type KeySet struct {
	keys []*KeyPair // current first
}

// NewKeySet holds current and, if not nil, next; next is endorsed by
// current.
func NewKeySet(current, next *KeyPair) (*KeySet, error) {
	if current == nil {
		return nil, ErrNoKey
	}
	ks := &KeySet{keys: []*KeyPair{current}}
	if next != nil {
		if next.ID() == current.ID() {
			return nil, fmt.Errorf("signer: key set: next key %s is the current key", next.ID())
		}
		if current.pub.Development && !next.pub.Development {
			return nil, fmt.Errorf("signer: key set: development key %s cannot endorse production key %s", current.ID(), next.ID())
		}
		e, err := Endorse(current, next.pub)
		if err != nil {
			return nil, err
		}
		next.pub.Endorsement = e
		ks.keys = append(ks.keys, next)
	}
	return ks, nil
}

// Active returns the key that signs at t: the current key while it is
// valid, then the next one.
func (ks *KeySet) Active(t time.Time) *KeyPair {
	for _, k := range ks.keys {
		if k.pub.ValidAt(t) {
			return k
		}
	}
	return nil
}

// Published returns the public keys to publish at t: every key not yet
// retired (a next key is published before its window opens).
func (ks *KeySet) Published(t time.Time) []PublicKey {
	var out []PublicKey
	for _, k := range ks.keys {
		if k.pub.NotAfter.IsZero() || !t.After(k.pub.NotAfter) {
			out = append(out, k.pub)
		}
	}
	return out
}

// Close wipes every key.
func (ks *KeySet) Close() error {
	var errs []error
	for _, k := range ks.keys {
		errs = append(errs, k.Close())
	}
	return errors.Join(errs...)
}

// LoadConfig says where and how to load a key set.
type LoadConfig struct {
	// Dir holds the key files. If CredentialsDir is set it is used
	// instead, with the credentials file policy.
	Dir            string
	CredentialsDir string
	// CertDir, if set, holds the attestation certificates (CertFile and
	// NextPrefix+CertFile) instead of the key directory: on the appliance
	// the node makes its keys and the operator installs their certificates
	// with the rest of the site material.
	CertDir string
	// KeyOwner is the uid the key files must belong to; zero means the
	// uid running this process. An operator's tool running as root checks
	// the files of the daemon's dynamic user.
	KeyOwner int
	// Production requires certificates from a production CA, refuses
	// development material and requires mlock.
	Production bool
	// Roots, if set, are the CAs the attestation certificates must chain
	// to (required in production).
	Roots *x509.CertPool
	// DevelopmentOnly refuses every key that is not a development key
	// (simulation: simulated time must never carry a production
	// signature). The error names the directory and the key id.
	DevelopmentOnly bool
	// Now is the load time; DevLifetime the window of a development key
	// without a certificate (24 h if zero).
	Now         time.Time
	DevLifetime time.Duration
	Log         *slog.Logger
}

// DevBackdate is how long before its load time a development key without
// a certificate is valid from. A batch's claims (its time) are taken just
// before it is signed; a reload between the two must still leave a key
// valid at that time, or the batch fails with "no signing key valid"
// (seen once in 2,140 requests rotating keys under load). A certified
// key's window is its certificate's, which starts when it was issued,
// long before the operator installs it and reloads.
const DevBackdate = time.Minute

// LoadKeySet loads and validates the current key (required) and the next
// key (if its files exist). Nothing is returned half-loaded: on error
// every key loaded so far is wiped.
func LoadKeySet(cfg LoadConfig) (*KeySet, error) {
	if cfg.Production && cfg.Roots == nil {
		return nil, errors.New("signer: load keys: production mode needs the production CA (roots)")
	}
	cur, err := loadKeyPair(cfg, "")
	if err != nil {
		return nil, err
	}
	var next *KeyPair
	if _, err := os.Lstat(cfg.path(NextPrefix + Ed25519KeyFile)); err == nil {
		if next, err = loadKeyPair(cfg, NextPrefix); err != nil {
			cur.Close()
			return nil, err
		}
	}
	ks, err := NewKeySet(cur, next)
	if err != nil {
		cur.Close()
		if next != nil {
			next.Close()
		}
		return nil, err
	}
	if cfg.Log != nil {
		for _, k := range ks.keys {
			cfg.Log.Info("signing key loaded", "key", k, "not_before", k.pub.NotBefore, "not_after", k.pub.NotAfter)
			if !k.locked {
				cfg.Log.Warn("signing key is NOT in locked memory (mlock failed: raise LimitMEMLOCK or grant CAP_IPC_LOCK)", "key", k)
			}
		}
	}
	return ks, nil
}

func (cfg LoadConfig) path(name string) string {
	if cfg.CertDir != "" && (name == CertFile || name == NextPrefix+CertFile) {
		return filepath.Join(cfg.CertDir, name)
	}
	if cfg.CredentialsDir != "" {
		return filepath.Join(cfg.CredentialsDir, name)
	}
	return filepath.Join(cfg.Dir, name)
}

func loadKeyPair(cfg LoadConfig, prefix string) (*KeyPair, error) {
	policy := keyfile.DefaultPolicy()
	policy.Credentials = cfg.CredentialsDir != ""
	if cfg.KeyOwner != 0 {
		policy.UID = cfg.KeyOwner
	}
	lock := lockedmem.Options{RequireLock: cfg.Production}
	edPath, mlPath, certPath := cfg.path(prefix+Ed25519KeyFile), cfg.path(prefix+MLDSA65KeyFile), cfg.path(prefix+CertFile)
	edSeed, err := keyfile.LoadSeed(edPath, keyfile.Ed25519, policy, lockedmem.Options{})
	if err != nil {
		return nil, fmt.Errorf("signer: load keys: %w", err)
	}
	defer edSeed.Close()
	mlSeed, err := keyfile.LoadSeed(mlPath, keyfile.MLDSA65, policy, lockedmem.Options{})
	if err != nil {
		return nil, fmt.Errorf("signer: load keys: %w", err)
	}
	defer mlSeed.Close()

	opts := KeyOptions{Lock: lock}
	certPEM, err := keyfile.ReadRegular(certPath)
	var node *NodeCert
	switch {
	case errors.Is(err, os.ErrNotExist):
		if cfg.Production {
			return nil, fmt.Errorf("signer: load keys: %s: missing: production keys need their attestation certificate", certPath)
		}
		lifetime := cfg.DevLifetime
		if lifetime <= 0 {
			lifetime = 24 * time.Hour
		}
		opts.Development, opts.NotBefore, opts.NotAfter = true, cfg.Now.Add(-DevBackdate), cfg.Now.Add(lifetime)
	case err != nil:
		return nil, fmt.Errorf("signer: load keys: %w", err)
	default:
		chain, err := DecodeCerts(certPath, certPEM)
		if err != nil {
			return nil, err
		}
		if node, err = ParseNodeChain(chain); err != nil {
			return nil, fmt.Errorf("signer: load keys: %s: %w", certPath, err)
		}
		if cfg.Production && node.Development {
			return nil, fmt.Errorf("signer: load keys: %s: %w: %q (production mode)", certPath, ErrDevelopmentKey, node.Cert.Subject.CommonName)
		}
		// Refused before a signing key is made of the seeds; the id is
		// the certified key's.
		if cfg.DevelopmentOnly && !node.Development {
			return nil, fmt.Errorf("signer: load keys: %s: key %s (certified by %s): %w",
				filepath.Dir(edPath), KeyID(node.Ed25519, node.MLDSA65, false), certPath, ErrNotDevelopmentKey)
		}
		if cfg.Roots != nil {
			at := cfg.Now
			if at.Before(node.Cert.NotBefore) {
				at = node.Cert.NotBefore
			}
			if err := node.VerifyChain(cfg.Roots, at, cfg.Production); err != nil {
				return nil, fmt.Errorf("signer: load keys: %s: %w", certPath, err)
			}
		}
		opts.Development, opts.Chain = node.Development, chain
		opts.NotBefore, opts.NotAfter = node.Cert.NotBefore, node.Cert.NotAfter
	}
	kp, err := NewKeyPair(edSeed.Bytes(), mlSeed.Bytes(), opts)
	if err != nil {
		return nil, fmt.Errorf("signer: load keys %s: %w", edPath, err)
	}
	if node != nil && (!bytes.Equal(node.Ed25519, kp.pub.Ed25519) || !node.MLDSA65.Equal(kp.pub.MLDSA65)) {
		kp.Close()
		return nil, fmt.Errorf("signer: load keys: %s does not certify the keys in %s and %s", certPath, edPath, mlPath)
	}
	return kp, nil
}
