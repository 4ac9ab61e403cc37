package client

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/aunsorm/timenode/signer"
)

// refreshKeys fetches /keys and recomputes the trusted keys: keys whose
// fingerprint is pinned, then, repeatedly, keys endorsed by a trusted key
// (a rotation the pinned key announced). A key with a certificate is
// trusted with the certificate's window and only if the certificate
// certifies exactly its keys (and, with Roots, chains to them).
func (c *Client) refreshKeys(ctx context.Context) error {
	var doc signer.KeysDocument
	if _, err := c.getJSON(ctx, c.keyU, &doc); err != nil {
		return err
	}
	keys, err := doc.PublicKeys()
	if err != nil {
		return fmt.Errorf("client: %s: %w", c.keyU, err)
	}
	now := c.cfg.Now()
	checked := make([]signer.PublicKey, 0, len(keys))
	fps := make([]string, 0, len(keys))
	for _, k := range keys {
		k, fp, err := c.checkKey(k, now)
		if err != nil {
			c.log.Warn("published key rejected", "key_id", k.ID, "err", err)
			continue
		}
		checked = append(checked, k)
		fps = append(fps, fp)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	trusted := map[string]signer.PublicKey{}
	for i, k := range checked {
		if c.pins[fps[i]] || (len(c.pins) == 0 && !c.cfg.Production) {
			trusted[k.ID] = k
		}
	}
	for added := true; added; {
		added = false
		for i, k := range checked {
			if _, ok := trusted[k.ID]; ok || k.Endorsement == nil {
				continue
			}
			by, ok := trusted[k.Endorsement.EndorserID]
			if !ok {
				continue
			}
			if err := signer.VerifyEndorsement(by, k); err != nil {
				c.log.Warn("endorsement rejected", "key_id", k.ID, "endorser_key_id", by.ID, "err", err)
				continue
			}
			trusted[k.ID], added = k, true
			if !c.pins[fps[i]] {
				c.pins[fps[i]] = true
				c.log.Info("following endorsed key rotation", "key_id", k.ID, "endorser_key_id", by.ID, "fingerprint", fps[i])
				if c.cfg.OnFollow != nil {
					c.cfg.OnFollow(fps[i])
				}
			}
		}
	}
	if len(trusted) == 0 {
		return fmt.Errorf("client: %s: %w: no published key matches a pinned fingerprint or is endorsed by one", c.keyU, signer.ErrUnknownKey)
	}
	c.trusted = trusted
	c.keysAt = time.Now()
	return nil
}

// checkKey validates a key's certificate, if any, and returns the key
// with the certificate's window and its fingerprint.
func (c *Client) checkKey(k signer.PublicKey, now time.Time) (signer.PublicKey, string, error) {
	if len(k.Chain) == 0 {
		if c.cfg.Production {
			return k, "", fmt.Errorf("%w: key %s has no attestation certificate", signer.ErrCertificate, k.ID)
		}
		return k, signer.KeyFingerprint(k.Ed25519, k.MLDSA65), nil
	}
	n, err := signer.ParseNodeChain(k.Chain)
	if err != nil {
		return k, "", err
	}
	if !bytes.Equal(n.Ed25519, k.Ed25519) || !n.MLDSA65.Equal(k.MLDSA65) {
		return k, "", fmt.Errorf("%w: certificate does not certify key %s", signer.ErrCertificate, k.ID)
	}
	if n.Development != k.Development {
		return k, "", fmt.Errorf("%w: development marking of the certificate and key %s differ", signer.ErrCertificate, k.ID)
	}
	if c.cfg.Roots != nil {
		at := now
		if at.Before(n.Cert.NotBefore) {
			at = n.Cert.NotBefore
		}
		if err := n.VerifyChain(c.cfg.Roots, at, c.cfg.Production); err != nil {
			return k, "", err
		}
	} else if c.cfg.Production {
		return k, "", fmt.Errorf("%w: no production CA configured", signer.ErrCertificate)
	}
	k.NotBefore, k.NotAfter = n.Cert.NotBefore, n.Cert.NotAfter
	return k, signer.Fingerprint(k.Chain[0]), nil
}
