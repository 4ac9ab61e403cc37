package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

// loadRoughtimeKey loads the Roughtime long-term key into locked memory,
// under the signing keys' file policy. Simulation makes one when there is
// none; production refuses to start without it, naming how to make it. A
// failed mlock is an error in production and a warning otherwise, as for
// the signing keys.
func loadRoughtimeKey(cfg *config, log *slog.Logger) (*signer.LockedEd25519, error) {
	path := cfg.roughtimeKey
	if cfg.sim {
		err := keyfile.GenerateKeyFile(path, keyfile.Ed25519, rand.Reader, keyfile.GenerateOptions{})
		switch {
		case err == nil:
			log.Info("generated a development Roughtime long-term key", "path", path)
		case !errors.Is(err, keyfile.ErrKeyExists):
			return nil, fmt.Errorf("roughtime key: %w", err)
		}
	}
	key, err := signer.LoadLockedEd25519(path, keyfile.DefaultPolicy(), lockedmem.Options{RequireLock: cfg.production})
	if key == nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("roughtime key %s: none: make it with `timenodectl keys roughtime --dir %s` or turn --roughtime off: %w", path, cfg.keyDir, err)
		}
		return nil, fmt.Errorf("roughtime key: %w", err)
	}
	if err != nil {
		log.Warn("Roughtime long-term key not locked in memory", "err", err)
	}
	return key, nil
}
