package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer"
)

func TestParseConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	creds := map[string]string{"CREDENTIALS_DIRECTORY": "/run/credentials/timenoded.service"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c *config)
		wantErr bool
	}{
		{"production takes TLS and keys from credentials", []string{"--production"}, creds, func(t *testing.T, c *config) {
			if c.tlsCert != "/run/credentials/timenoded.service/tls.crt" || c.credentialsDir == "" {
				t.Errorf("tls cert %q credentials %q", c.tlsCert, c.credentialsDir)
			}
		}, false},
		{"simulation ignores credentials", []string{"--sim"}, creds, func(t *testing.T, c *config) {
			if c.tlsCert != "" || c.credentialsDir != "" {
				t.Errorf("simulation took credentials: tls cert %q, dir %q", c.tlsCert, c.credentialsDir)
			}
			if c.httpAddr != "127.0.0.1:5000" || c.ntpAddr != "127.0.0.1:11123" {
				t.Errorf("simulation defaults: listen %q ntp %q", c.httpAddr, c.ntpAddr)
			}
		}, false},
		{"environment of the runbook", nil, map[string]string{"NTP_AUTHORITY_ID": "ntp.prod.aunsorm", "NTP_STRATUM": "2",
			"REFRESH_INTERVAL_SECS": "5", "NTP_SIGNING_KEY_PATH": "/etc/timenode/keys"}, func(t *testing.T, c *config) {
			if c.authorityID != "ntp.prod.aunsorm" || c.stratum != 2 || c.refresh != 5*time.Second || c.keyDir != "/etc/timenode/keys" {
				t.Errorf("got authority %q stratum %d refresh %v keys %q", c.authorityID, c.stratum, c.refresh, c.keyDir)
			}
		}, false},
		{"sim and production exclude each other", []string{"--sim", "--production"}, nil, nil, true},
		{"bad stratum", nil, map[string]string{"NTP_STRATUM": "16"}, nil, true},
		{"upstream reference address", nil, map[string]string{"NTP_STRATUM": "2", "NTP_REFERENCE_ADDRESS": "192.0.2.7"}, func(t *testing.T, c *config) {
			if c.upstreamRefID != [4]byte{192, 0, 2, 7} {
				t.Errorf("upstream refid %v", c.upstreamRefID)
			}
		}, false},
		{"bad reference address", nil, map[string]string{"NTP_STRATUM": "2", "NTP_REFERENCE_ADDRESS": "gnss"}, nil, true},
		{"bad refresh interval", nil, map[string]string{"REFRESH_INTERVAL_SECS": "0"}, nil, true},
		{"bad NMEA-only stratum", []string{"--nmea-only-stratum", "16"}, nil, nil, true},
		{"stray argument", []string{"extra"}, nil, nil, true},
		{"lock threshold of a noisy PPS", []string{"--lock-threshold", "500us"}, nil, func(t *testing.T, c *config) {
			if c.lockThreshold != 500*time.Microsecond {
				t.Errorf("lock threshold %v", c.lockThreshold)
			}
		}, false},
		{"lock threshold zero", []string{"--lock-threshold", "0s"}, nil, nil, true},
		{"NTS cookie keys kept in the state directory", []string{"--state-dir", "/var/lib/tn"}, nil, func(t *testing.T, c *config) {
			if c.ntsKeyFile != "/var/lib/tn/nts-cookie-keys" {
				t.Errorf("NTS key file %q", c.ntsKeyFile)
			}
		}, false},
		{"NTS cookie keys in memory only", []string{"--nts-cookie-keys", "-"}, nil, func(t *testing.T, c *config) {
			if c.ntsKeyFile != "" {
				t.Errorf("NTS key file %q, want none", c.ntsKeyFile)
			}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env(tc.env), io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err == nil && tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// TestSigningKeyPath: NTP_SIGNING_KEY_PATH as the runbook gives it (one
// file) is refused with what to give instead; a path to a key of the pair
// names its directory; a directory is taken as it is.
func TestSigningKeyPath(t *testing.T) {
	dir := t.TempDir()
	runbook := filepath.Join(dir, "ntp-signing-key.pem")
	for _, f := range []string{runbook, filepath.Join(dir, signer.Ed25519KeyFile)} {
		if err := os.WriteFile(f, []byte("key"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		path, want, wantErr string
	}{
		{dir, dir, ""},
		{filepath.Join(dir, signer.Ed25519KeyFile), dir, ""},
		{filepath.Join(dir, "missing"), filepath.Join(dir, "missing"), ""},
		{runbook, "", "NTP_SIGNING_KEY_PATH=" + dir},
	}
	for _, tt := range tests {
		c, err := parseConfig(nil, func(k string) string {
			if k == "NTP_SIGNING_KEY_PATH" {
				return tt.path
			}
			return ""
		}, io.Discard)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "is a file") {
				t.Errorf("%s: err %v, want one that says it is a file and to give %s", tt.path, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.path, err)
		case c.keyDir != tt.want:
			t.Errorf("%s: key directory %q, want %q", tt.path, c.keyDir, tt.want)
		}
	}
}
