package nftables

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// abs returns the absolute path of a file in this package's directory.
func abs(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRulesetSyntax checks the ruleset alone, and followed by the example
// site file, with `nft -c` inside a fresh, unprivileged network namespace
// (unshare -rn), so the host's own ruleset is never consulted or changed.
// The broken ruleset is the control.
func TestRulesetSyntax(t *testing.T) {
	testbin.NeedTool(t, "nft", "nftables")
	testbin.NeedTool(t, "unshare", "util-linux")
	withSite := filepath.Join(t.TempDir(), "with-site.nft")
	combined := `include "` + abs(t, "timenode.nft") + `"` + "\n" +
		`include "` + abs(t, "site.example.nft") + `"` + "\n"
	if err := os.WriteFile(withSite, []byte(combined), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		wantErr bool
	}{
		{name: "ruleset", file: abs(t, "timenode.nft")},
		{name: "ruleset with example site file", file: withSite},
		{name: "control: broken ruleset", file: abs(t, "testdata/broken.nft"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command("unshare", "-rn", "nft", "-c", "-f", tt.file)
			cmd.Stderr = &stderr
			err := cmd.Run()
			if (err != nil) != tt.wantErr {
				t.Errorf("nft -c -f %s: %v %s, want error = %v", tt.file, err, stderr.String(), tt.wantErr)
			}
			if err == nil && stderr.Len() > 0 {
				t.Errorf("nft -c -f %s: exit 0 but stderr: %s", tt.file, stderr.String())
			}
		})
	}
}
