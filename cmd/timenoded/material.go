package main

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aunsorm/timenode/netsvc/mtls"
	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/timing/leap"
)

// material is one consistent set of what the daemon serves with: TLS
// identity and client policy, the signing keys, and the leap second list. Start and every
// reload build a whole set; it is installed only when all of it is valid.
type material struct {
	tlsFiles mtls.Files
	tls      *mtls.Material
	policy   mtls.Policy
	keys     *signer.KeySet
	keyCfg   signer.LoadConfig
	site     string // generation directory of the site material; "" outside site mode
	// metrics is the TLS material of /metrics: the node's certificate with
	// the scrapers' CA as its client CA; nil serves plain HTTP.
	metrics *mtls.Material
	// leap is the leap second list (nil: none usable), read from
	// leapPath: the generation's leap-seconds.list, else --leap-seconds.
	leap     *leap.Schedule
	leapPath string
	// witnessRoots are the NTS witnesses' trust anchors, read from the
	// file witnessCA (func witnessCA); "" and nil: the system roots.
	witnessCA    string
	witnessRoots *x509.CertPool
}

// metricsCA is the CA file of the Prometheus scrapers: --metrics-client-ca,
// else the site generation's metrics-ca.pem when the bundle carried one.
func metricsCA(cfg *config, gen string) string {
	if cfg.metricsClientCA != "" || gen == "" {
		return cfg.metricsClientCA
	}
	p := filepath.Join(gen, site.MetricsCA)
	if _, err := os.Lstat(p); err != nil {
		return ""
	}
	return p
}

// siteMode says whether TLS material, allow-list and attestation
// certificates come from the provisioned site directory: production with
// no explicit TLS files or credentials, as on the appliance.
func (c *config) siteMode() bool {
	return c.production && c.tlsCert == "" && c.tlsKey == "" && c.clientCA == ""
}

// loadMaterial reads and validates one set at now. In site mode the site
// link is resolved once, so the set comes from one generation even if the
// operator installs another meanwhile. Nothing is returned half-loaded.
func loadMaterial(cfg *config, now time.Time, log *slog.Logger) (*material, error) {
	m := &material{}
	var err error
	if cfg.siteMode() {
		if m.site, err = site.Resolve(cfg.stateDir); err != nil {
			return nil, err
		}
		m.tlsFiles = mtls.Files{
			Cert:     filepath.Join(m.site, site.TLSCert),
			Key:      filepath.Join(cfg.stateDir, site.KeysDir, site.TLSKey),
			ClientCA: filepath.Join(m.site, site.ClientCA),
		}
		m.policy = mtls.Policy{RequireClientCert: cfg.requireCert}
		allowPath := filepath.Join(m.site, site.AllowList)
		b, err := keyfile.ReadRegular(allowPath)
		if err != nil {
			return nil, fmt.Errorf("allow-list: %w", err)
		}
		if m.policy.Allowed, err = site.ParseAllowList(allowPath, b); err != nil {
			return nil, err
		}
		if len(cfg.allow) > 0 {
			return nil, fmt.Errorf("--mtls-allow and the site's %s both name the allowed clients: provision the allow-list instead", allowPath)
		}
	} else if m.tlsFiles, m.policy, err = tlsSetup(cfg, now); err != nil {
		return nil, err
	}
	if m.keyCfg, err = signingKeys(cfg, m.site, now, log); err != nil {
		return nil, err
	}
	if m.tls, err = mtls.Load(m.tlsFiles, now); err != nil {
		return nil, err
	}
	if ca := metricsCA(cfg, m.site); ca != "" {
		f := m.tlsFiles
		f.ClientCA = ca
		if m.metrics, err = mtls.Load(f, now); err != nil {
			return nil, fmt.Errorf("metrics client CA: %w", err)
		}
	}
	if m.leapPath, m.leap, err = leapList(cfg, m.site, log); err != nil {
		return nil, err
	}
	if m.witnessCA, m.witnessRoots, err = witnessCA(cfg, m.site); err != nil {
		return nil, err
	}
	if m.keys, err = signer.LoadKeySet(m.keyCfg); err != nil {
		return nil, err
	}
	if m.keys.Active(now) == nil {
		m.keys.Close()
		return nil, signer.ErrNoKeyValid(now)
	}
	return m, nil
}

// attestationRoots reads the production CA certificates that must
// certify the signing keys.
func attestationRoots(path string) (*x509.CertPool, error) {
	pem, err := keyfile.ReadRegular(path)
	if err != nil {
		return nil, fmt.Errorf("attestation CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("attestation CA %s: no PEM certificate found", path)
	}
	return roots, nil
}
