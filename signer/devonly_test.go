package signer

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestDevelopmentOnlyRefusesProductionKeys loads key directories the way
// simulation does (DevelopmentOnly): a key certified by a production CA,
// current or next, is refused with an error naming the directory and the
// key id; development keys (no certificate, or a development CA's) load.
func TestDevelopmentOnlyRefusesProductionKeys(t *testing.T) {
	prod := newTestCA(t, "timenode test CA", false)
	devCA := newTestCA(t, "timenode dev CA", true)
	nb, na := t0.Add(-time.Hour), t0.Add(90*24*time.Hour)
	tests := []struct {
		name string
		// setup writes the files and returns the id of the key to refuse
		// ("" if the set must load).
		setup func(t *testing.T, dir string) string
	}{
		{"production certificate", func(t *testing.T, dir string) string {
			id := writeKeys(t, dir, "")
			certify(t, dir, dir, "", prod, nb, na)
			return id
		}},
		{"production certificate on the next key", func(t *testing.T, dir string) string {
			writeKeys(t, dir, "")
			certify(t, dir, dir, "", devCA, nb, na)
			id := writeKeys(t, dir, NextPrefix)
			certify(t, dir, dir, NextPrefix, prod, nb, na)
			return id
		}},
		{"no certificate: development key", func(t *testing.T, dir string) string {
			writeKeys(t, dir, "")
			return ""
		}},
		{"development CA's certificate", func(t *testing.T, dir string) string {
			writeKeys(t, dir, "")
			certify(t, dir, dir, "", devCA, nb, na)
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			id := tc.setup(t, dir)
			ks, err := LoadKeySet(LoadConfig{Dir: dir, Now: t0, DevelopmentOnly: true})
			if id == "" {
				if err != nil {
					t.Fatalf("development key refused: %v", err)
				}
				ks.Close()
				return
			}
			if err == nil {
				ks.Close()
				t.Fatalf("production key %s loaded in development-only mode", id)
			}
			if !errors.Is(err, ErrNotDevelopmentKey) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), id) {
				t.Fatalf("err %q\nwant ErrNotDevelopmentKey naming %s and key %s", err, dir, id)
			}
		})
	}
}

// TestDevelopmentOnlyReloadKeepsOldKeys: a reload in development-only mode
// that finds a production key is refused, and the development key it had
// keeps signing.
func TestDevelopmentOnlyReloadKeepsOldKeys(t *testing.T) {
	prod := newTestCA(t, "timenode test CA", false)
	dir := t.TempDir()
	writeKeys(t, dir, "")
	cfg := LoadConfig{Dir: dir, Now: t0, DevelopmentOnly: true}
	ks, err := LoadKeySet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSignerSet(ks, func() time.Time { return t0 })
	defer s.Close()
	old := s.Keys()

	certify(t, dir, dir, "", prod, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	err = s.Reload(cfg)
	if !errors.Is(err, ErrNotDevelopmentKey) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("reload: %v, want ErrNotDevelopmentKey naming %s", err, dir)
	}
	if got := s.Keys(); len(got) != 1 || got[0].ID != old[0].ID || !got[0].Development {
		t.Fatalf("after the refused reload: keys %v, want the development key %s", ids(got), old[0].ID)
	}
	if a, err := signAndVerify(t, s, t0, old, false); err != nil || a.KeyID != old[0].ID {
		t.Fatalf("attestation after the refused reload: %v", err)
	}
}
