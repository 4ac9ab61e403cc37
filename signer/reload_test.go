package signer

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestReloadFailureKeepsOldKeys breaks the key directory in several ways;
// each failed Reload must leave the old key published and signing, and an
// attestation signed after the failure must verify with the old key.
func TestReloadFailureKeepsOldKeys(t *testing.T) {
	prod := newTestCA(t, "timenode test CA", false)
	nb, na := t0.Add(-time.Hour), t0.Add(30*24*time.Hour)
	tests := []struct {
		name    string
		breakIt func(t *testing.T, dir string)
		wantIs  error
		wantMsg string
	}{
		{"corrupt key file", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, MLDSA65KeyFile), []byte("not a key\n"), 0o600)
		}, nil, "signing-mldsa65.pem"},
		{"world-readable key", func(t *testing.T, dir string) {
			os.Chmod(filepath.Join(dir, Ed25519KeyFile), 0o644)
		}, nil, "signing-ed25519.pem: accessible by other users"},
		{"new keys, old certificate", func(t *testing.T, dir string) {
			for _, name := range []string{Ed25519KeyFile, MLDSA65KeyFile} {
				os.Remove(filepath.Join(dir, name))
			}
			writeKeys(t, dir, "")
		}, nil, "does not certify the keys"},
		{"certificate not valid yet", func(t *testing.T, dir string) {
			certify(t, dir, dir, "", prod, t0.Add(time.Hour), na)
		}, ErrNoKey, "none valid at"},
		{"broken next key", func(t *testing.T, dir string) {
			writeKeys(t, dir, NextPrefix)
			os.WriteFile(filepath.Join(dir, NextPrefix+Ed25519KeyFile), nil, 0o600)
		}, nil, "next-signing-ed25519.pem"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeKeys(t, dir, "")
			certify(t, dir, dir, "", prod, nb, na)
			cfg := LoadConfig{Dir: dir, Now: t0, Production: true, Roots: prod.roots}
			ks, err := LoadKeySet(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := NewSignerSet(ks, func() time.Time { return t0 })
			defer s.Close()
			old := s.Keys()

			tc.breakIt(t, dir)
			err = s.Reload(cfg)
			if err == nil {
				t.Fatal("reload of broken files succeeded")
			}
			if (tc.wantIs != nil && !errors.Is(err, tc.wantIs)) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("reload: %v, want %v saying %q", err, tc.wantIs, tc.wantMsg)
			}
			if got := s.Keys(); len(got) != 1 || got[0].ID != old[0].ID || !s.Ready() {
				t.Fatalf("after the failed reload: keys %v, ready %v; want the old key %s", ids(got), s.Ready(), old[0].ID)
			}
			a, err := signAndVerify(t, s, t0.Add(2*time.Second), old, true)
			if err != nil || a.KeyID != old[0].ID {
				t.Fatalf("attestation after the failed reload: key %s, verify with the old key: %v", a.KeyID, err)
			}
		})
	}
}

func ids(keys []PublicKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

// TestReloadRotation walks a rotation through Reload: a new next key is
// published alongside the current one with an endorsement, takes over
// when the current key's window ends, and the rotated-out key then fails
// verification. The clock is the signer's now function, never the host's.
func TestReloadRotation(t *testing.T) {
	prod := newTestCA(t, "timenode test CA", false)
	aEnd := t0.Add(10 * 24 * time.Hour)
	bStart, bEnd := t0.Add(9*24*time.Hour), t0.Add(100*24*time.Hour)
	dir := t.TempDir()
	idA := writeKeys(t, dir, "")
	certify(t, dir, dir, "", prod, t0.Add(-time.Hour), aEnd)
	cfg := LoadConfig{Dir: dir, Now: t0, Production: true, Roots: prod.roots}
	ks, err := LoadKeySet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	now.Store(t0.UnixNano())
	s := NewSignerSet(ks, func() time.Time { return time.Unix(0, now.Load()) })
	defer s.Close()
	oldPair := ks.keys[0]
	before := s.Keys()
	if len(before) != 1 || before[0].ID != idA {
		t.Fatalf("before the rotation: %v, want [%s]", ids(before), idA)
	}
	beforeAtt, err := signAndVerify(t, s, t0, before, true)
	if err != nil {
		t.Fatal(err)
	}

	// The operator installs the next key and reloads.
	idB := writeKeys(t, dir, NextPrefix)
	certify(t, dir, dir, NextPrefix, prod, bStart, bEnd)
	if err := s.Reload(cfg); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	if _, _, err := oldPair.sign([]byte("after the swap")); !errors.Is(err, ErrNoKey) {
		t.Errorf("the replaced key set was not wiped: %v", err)
	}

	// The /keys document, as a client reads it.
	raw, err := json.Marshal(NewKeysDocument("ntp.prod.aunsorm", s.Keys()))
	if err != nil {
		t.Fatal(err)
	}
	var doc KeysDocument
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	overlap, err := doc.PublicKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(overlap) != 2 || overlap[0].ID != idA || overlap[1].ID != idB {
		t.Fatalf("during the overlap /keys has %v, want [%s %s]", ids(overlap), idA, idB)
	}
	if overlap[0].Endorsement != nil || overlap[1].Endorsement == nil || overlap[1].Endorsement.EndorserID != idA {
		t.Fatal("the next key is not endorsed by the current one")
	}
	// A client pinned to A follows the endorsement to B.
	if err := VerifyEndorsement(before[0], overlap[1]); err != nil {
		t.Fatalf("endorsement of %s by %s: %v", idB, idA, err)
	}
	if v := NewVerifier(overlap); v.Verify(beforeAtt, t0.Add(time.Second), []byte("keyset nonce")) != nil {
		t.Fatal("an attestation signed before the reload no longer verifies during the overlap")
	}

	steps := []struct {
		name      string
		at        time.Time
		published []string
		signer    string
	}{
		{"after the reload, before B's window", t0.Add(time.Minute), []string{idA, idB}, idA},
		{"both windows open: A still signs", bStart.Add(12 * time.Hour), []string{idA, idB}, idA},
		{"A's window over: B signs, A retired", aEnd.Add(time.Hour), []string{idB}, idB},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			now.Store(st.at.UnixNano())
			if got := ids(s.Keys()); strings.Join(got, ",") != strings.Join(st.published, ",") {
				t.Fatalf("published %v, want %v", got, st.published)
			}
			a, err := signAndVerify(t, s, st.at, overlap, true)
			if err != nil || a.KeyID != st.signer {
				t.Fatalf("signed by %s (want %s), verified with the overlap /keys: %v", a.KeyID, st.signer, err)
			}
		})
	}

	// The rotated-out key, used after its window (same key material, no
	// window of its own), is refused by a client that knows the window
	// and by one that only knows the current /keys.
	after := aEnd.Add(time.Hour)
	rogue := pairFromFiles(t, dir, "", KeyOptions{})
	defer rogue.Close()
	if rogue.ID() != idA {
		t.Fatalf("rogue key %s, want %s", rogue.ID(), idA)
	}
	_, err = signAndVerify(t, NewSigner(rogue, func() time.Time { return after }), after, overlap, true)
	if !errors.Is(err, ErrKeyWindow) {
		t.Fatalf("rotated-out key after its window, overlap /keys: %v, want ErrKeyWindow", err)
	}
	_, err = signAndVerify(t, NewSigner(rogue, func() time.Time { return after }), after, s.Keys(), true)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("rotated-out key after its window, current /keys: %v, want ErrUnknownKey", err)
	}

	// The operator completes the rotation: the next files become the
	// current ones, and a reload swaps B in alone.
	for _, name := range []string{Ed25519KeyFile, MLDSA65KeyFile, CertFile} {
		if err := os.Rename(filepath.Join(dir, NextPrefix+name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Now = after
	if err := s.Reload(cfg); err != nil {
		t.Fatalf("reload completing the rotation: %v", err)
	}
	final := s.Keys()
	if len(final) != 1 || final[0].ID != idB || final[0].Endorsement != nil {
		t.Fatalf("after the rotation: %v, want [%s] without endorsement", ids(final), idB)
	}
	if a, err := signAndVerify(t, s, after.Add(time.Minute), final, true); err != nil || a.KeyID != idB {
		t.Fatalf("after the rotation: signed by %s, %v", a.KeyID, err)
	}
}

// TestReloadBetweenClaimsAndSigning is the race TestReloadUnderLoad hit:
// a batch takes its claims (time T), development keys are replaced by a
// reload a moment later, and only then is the batch signed. The new key
// must be valid at T, or the batch fails with "no signing key valid".
func TestReloadBetweenClaimsAndSigning(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir, "")
	ks, err := LoadKeySet(LoadConfig{Dir: dir, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSignerSet(ks, func() time.Time { return t0.Add(2 * time.Second) })
	defer s.Close()

	c := claims() // taken at t0
	writeKeys(t, dir, "")
	if err := s.Reload(LoadConfig{Dir: dir, Now: t0.Add(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	atts, err := s.Attest(c, [][]byte{[]byte("n")})
	if err != nil {
		t.Fatalf("batch with claims from before the reload: %v", err)
	}
	if err := NewVerifier(s.Keys()).Verify(atts[0], t0, []byte("n")); err != nil {
		t.Fatal(err)
	}
}
