package provision

import (
	"os"
	"path/filepath"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer"
)

// keepPinned protects what clients pin. They pin the SHA-256 of the
// current attestation certificate (AUNSORM_CALIBRATION_FINGERPRINT), and
// follow a new key only through the endorsement of a key they already
// trust; a bundle that re-issues the current key's certificate therefore
// makes every pinned client reject the node's attestations, and also the
// next key that the installed certificate would have endorsed (seen in the
// image test: every client failing after a rotation bundle).
//
// A bundle that leaves attestation-cert.pem out keeps the installed one
// (a rotation bundle need carry only the next key's certificate). One that
// brings a different certificate is refused unless c.NewPin says the
// clients have been given the new fingerprint.
func keepPinned(c Config, files map[string][]byte, r *Report) {
	gen, err := current(c.State)
	if err != nil || gen == "" {
		return // first install: nothing is pinned yet
	}
	installed, err := os.ReadFile(filepath.Join(c.State, site.GensDir, gen, site.AttestationCert))
	if err != nil {
		return
	}
	oldFP := leafFingerprint(installed)
	b, ok := files[site.AttestationCert]
	if !ok {
		files[site.AttestationCert] = installed
		r.warn(site.AttestationCert, "not in the bundle: the installed certificate (generation %s, fingerprint %s) is kept", gen, oldFP)
		return
	}
	newFP := leafFingerprint(b)
	if oldFP == "" || newFP == "" || oldFP == newFP {
		return // unreadable ones are refused by the checks that follow
	}
	if c.NewPin {
		r.warn(site.AttestationCert, "replaces the pinned certificate: clients pinning %s must be given %s (--new-pin)", oldFP, newFP)
		return
	}
	r.problem(site.AttestationCert, "a new certificate (fingerprint %s) for the signing key replaces the installed one (%s), which clients pin as AUNSORM_CALIBRATION_FINGERPRINT: every pinned client would reject the node's attestations. "+
		"Leave %s out of the bundle to keep the installed certificate, rotate to a next key (clients follow its endorsement), or give the clients the new fingerprint first and pass --new-pin",
		newFP, oldFP, site.AttestationCert)
}

// leafFingerprint is the calibration fingerprint of a PEM chain's first
// certificate, "" if there is none.
func leafFingerprint(pemChain []byte) string {
	chain, err := signer.DecodeCerts(site.AttestationCert, pemChain)
	if err != nil || len(chain) == 0 {
		return ""
	}
	return signer.Fingerprint(chain[0])
}
