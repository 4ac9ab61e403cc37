package provision

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

// Promote ends a signing key rotation: the next key, certified by the
// current generation's next-attestation-cert.pem, becomes the only key.
// It checks that certificate (production, chains to attestation-ca.pem,
// valid at c.Now, certifies exactly the next key), then:
//
//  1. writes a new generation in which attestation-cert.pem is the old
//     next-attestation-cert.pem and there is no next certificate (not
//     current yet);
//  2. renames keys/next-signing-ed25519.pem over keys/signing-ed25519.pem;
//  3. renames keys/next-signing-mldsa65.pem over keys/signing-mldsa65.pem;
//  4. swaps S/site to the new generation and prunes older ones.
//
// The renames replace the old key files, so the old key is never left
// behind. Nothing is remembered between runs: each run reads the state
// it finds, so after a crash at any point running Promote again completes
// the rotation. After a crash in step 1 the node is as before (the stray
// generation is pruned by the rerun). After step 2 or 3 the current
// generation still holds next-attestation-cert.pem and the next key's
// halves are each under their next- name or already under the current
// one: the rerun finds each half where it is, checks both against the
// certificate, renames what is left and swaps. After step 4 the rotation
// is done, and a rerun says there is nothing to promote. Between steps 2
// and 4 the current generation does not match the key files, so the
// daemon would refuse a reload (it keeps signing with the keys it holds):
// reload only after Promote has succeeded.
func Promote(c Config) (*Result, error) {
	c = c.withDefaults()
	cur, unlock, err := lockProvisioned(c.State, "promote")
	if err != nil {
		return nil, err
	}
	defer unlock()
	uid, _, err := owner(c.State)
	if err != nil {
		return nil, err
	}
	files, err := readGen(c.State, cur)
	if err != nil {
		return nil, err
	}
	keys := filepath.Join(c.State, site.KeysDir)
	ed, ml := filepath.Join(keys, signer.Ed25519KeyFile), filepath.Join(keys, signer.MLDSA65KeyFile)
	nextEd, nextML := filepath.Join(keys, signer.NextPrefix+signer.Ed25519KeyFile), filepath.Join(keys, signer.NextPrefix+signer.MLDSA65KeyFile)
	nextPEM, ok := files[site.NextAttestationCert]
	if !ok {
		if exists(nextEd) || exists(nextML) {
			return nil, fmt.Errorf("generation %s has no %s for %s/next-signing-*.pem: install a bundle with the next key's certificate first", cur, site.NextAttestationCert, site.KeysDir)
		}
		return nil, fmt.Errorf("nothing to promote: no next signing key (%s/next-signing-*.pem) and no %s in generation %s; a rotation starts with `timenodectl keys generate --next`", site.KeysDir, site.NextAttestationCert, cur)
	}
	next, err := nodeCert(site.NextAttestationCert, nextPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", site.NextAttestationCert, err)
	}
	cas, err := parseCAs(site.AttestationCA, files[site.AttestationCA])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", site.AttestationCA, err)
	}
	roots := poolOf(cas)
	if next.Development {
		return nil, fmt.Errorf("%s: %q is development material (production only)", site.NextAttestationCert, next.Cert.Subject.CommonName)
	}
	if err := next.VerifyChain(roots, c.Now, true); err != nil {
		return nil, fmt.Errorf("%s: not valid at %s: %w", site.NextAttestationCert, c.Now.UTC().Format(time.RFC3339), err)
	}
	// Each half of the next key is under its next- name, or already
	// renamed by an interrupted run.
	edSrc, mlSrc := pick(nextEd, ed), pick(nextML, ml)
	if err := matches(edSrc, mlSrc, next, keyPolicy(uid)); err != nil {
		return nil, err
	}
	oldID := ""
	if n, err := nodeCert(site.AttestationCert, files[site.AttestationCert]); err == nil {
		oldID = signer.KeyID(n.Ed25519, n.MLDSA65, n.Development)
	}
	newFiles := map[string][]byte{}
	for k, v := range files {
		newFiles[k] = v
	}
	newFiles[site.AttestationCert] = nextPEM
	delete(newFiles, site.NextAttestationCert)
	gen, err := writeGen(c, newFiles)
	if err != nil {
		return nil, err
	}
	for _, mv := range [][2]string{{nextEd, ed}, {nextML, ml}} {
		if !exists(mv[0]) {
			continue
		}
		if err := c.at("rename " + filepath.Base(mv[0])); err != nil {
			return nil, fmt.Errorf("rename %s: %w (run promote again to complete)", mv[0], err)
		}
		if err := os.Rename(mv[0], mv[1]); err != nil {
			return nil, fmt.Errorf("%w (run promote again to complete)", err)
		}
		if err := keyfile.SyncDir(keys); err != nil {
			return nil, err
		}
	}
	// What the daemon will load from the new generation.
	ks, err := signer.LoadKeySet(signer.LoadConfig{Dir: keys, CertDir: filepath.Join(c.State, site.GensDir, gen),
		Production: true, Roots: roots, Now: c.Now, KeyOwner: uid})
	if err != nil {
		removeGen(c.State, gen)
		return nil, fmt.Errorf("the promoted key does not load: %w", err)
	}
	active := ks.Active(c.Now)
	ks.Close()
	if active == nil {
		removeGen(c.State, gen)
		return nil, signer.ErrNoKeyValid(c.Now)
	}
	if err := swap(c, gen); err != nil {
		return nil, fmt.Errorf("%w (run promote again to complete)", err)
	}
	res := &Result{Generation: gen, Previous: cur}
	if err := c.at("prune"); err != nil {
		return res, err
	}
	res.Warnings = prune(c.State, gen, cur)
	newID := signer.KeyID(next.Ed25519, next.MLDSA65, false)
	res.Changes = []string{
		fmt.Sprintf("signing key: %s is now the only key (was %s; its files are gone)", newID, orNone(oldID)),
		fmt.Sprintf("site material: generation %s is current (previous: %s)", gen, cur),
		"  " + site.AttestationCert + ": the former " + site.NextAttestationCert,
		"  " + site.NextAttestationCert + ": removed",
	}
	// The rest of the generation was copied as it was: say now if the
	// daemon would refuse it at the reload (a certificate expired since).
	if r, err := Check(c, filepath.Join(c.State, site.GensDir, gen)); err == nil {
		for _, p := range r.Problems {
			res.Warnings = append(res.Warnings, "the daemon will refuse the new generation: "+p.String())
		}
	}
	res.Next = []string{"systemctl reload timenoded   # publishes the promoted key alone",
		"clients pin sha256 " + signer.Fingerprint(next.Cert.Raw)}
	return res, nil
}

// pick returns the next- file if it is there, else the current name.
func pick(next, cur string) string {
	if exists(next) {
		return next
	}
	return cur
}

// matches checks that the files edPath and mlPath hold the two halves of
// the key cert certifies.
func matches(edPath, mlPath string, cert *signer.NodeCert, p keyfile.Policy) error {
	kp, err := loadPair(edPath, mlPath, p)
	if err != nil {
		return err
	}
	defer kp.Close()
	pub := kp.Public()
	if !bytes.Equal(pub.Ed25519, cert.Ed25519) {
		return fmt.Errorf("%s does not hold the Ed25519 key %s certifies: the certificate is for another key", edPath, site.NextAttestationCert)
	}
	if !pub.MLDSA65.Equal(cert.MLDSA65) {
		return fmt.Errorf("%s does not hold the ML-DSA-65 key %s certifies: the certificate is for another key", mlPath, site.NextAttestationCert)
	}
	return nil
}

// loadPair reads a key pair's two seed files.
func loadPair(edPath, mlPath string, p keyfile.Policy) (*signer.KeyPair, error) {
	edSeed, err := keyfile.LoadSeed(edPath, keyfile.Ed25519, p, lockedmem.Options{})
	if err != nil {
		return nil, err
	}
	defer edSeed.Close()
	mlSeed, err := keyfile.LoadSeed(mlPath, keyfile.MLDSA65, p, lockedmem.Options{})
	if err != nil {
		return nil, err
	}
	defer mlSeed.Close()
	return signer.NewKeyPair(edSeed.Bytes(), mlSeed.Bytes(), signer.KeyOptions{})
}

// lockProvisioned takes the state directory's lock for a change that needs
// a provisioned node (rollback, promote) and returns the current
// generation; verb names the change in the error of an unprovisioned node.
func lockProvisioned(state, verb string) (cur string, unlock func(), err error) {
	unlock, err = lock(state)
	if err != nil {
		return "", nil, err
	}
	if err = checkLink(state); err == nil {
		if cur, err = current(state); err == nil && cur == "" {
			err = fmt.Errorf("%s: not provisioned: nothing to %s", filepath.Join(state, site.Link), verb)
		}
	}
	if err != nil {
		unlock()
		return "", nil, err
	}
	return cur, unlock, nil
}
