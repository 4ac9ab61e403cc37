package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestProductionVerifyNeedsATrustAnchor: --production trusted whatever
// /keys it was given (a tester's own key verified). It now refuses to run
// without the production CA and a pinned fingerprint, and never checks a
// saved file against keys nothing vouches for.
func TestProductionVerifyNeedsATrustAnchor(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no anchor", []string{"verify", "https://127.0.0.1:1/attestation", "--production"}, "--production needs the trust anchor"},
		{"CA without pin", []string{"verify", "https://127.0.0.1:1/attestation", "--production", "--attestation-ca", "/nonexistent"}, "--production needs the trust anchor"},
		{"saved file", []string{"verify", "att.json", "--pin", strings.Repeat("ab", 32)}, "verify a live node"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := dispatch(append([]string{"attestation"}, tc.args...), &out, &errOut); code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.want) || strings.Contains(out.String(), "verified") {
				t.Errorf("stderr %q stdout %q, want a refusal naming %q", errOut.String(), out.String(), tc.want)
			}
		})
	}
}
