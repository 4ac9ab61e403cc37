package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/netsvc/site/sitetest"
)

// TestProvisionLeapList: `provision check` and `install` take a bundle's
// leap-seconds.list when it verifies and is newer than the node's, and
// refuse, naming the file and the dates, one with a bad hash, an expired
// one, an older one and a FIFO. The image's list is a file of the test's
// (--leap-seconds), expired at the injected time as Debian's is.
func TestProvisionLeapList(t *testing.T) {
	const day = 24 * time.Hour
	n := newProvNode(t)
	image := filepath.Join(t.TempDir(), "leap-seconds.list")
	if err := os.WriteFile(image, sitetest.LeapList(provT0.Add(-340*day), provT0.Add(-158*day)), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := append(n.flags(), "--leap-seconds", image)
	fresh := sitetest.LeapList(provT0.Add(-day), provT0.Add(200*day))
	withList := func(b []byte) func(map[string][]byte) {
		return func(f map[string][]byte) { f[site.LeapSeconds] = b }
	}
	// A leap second at the end of 2026 added by hand, the hash left alone.
	tamper := strings.Replace(string(fresh), "\t37\t# 1 Jan 2017\n", "\t37\t# 1 Jan 2017\n4007750400\t38\t# 1 Jan 2027\n", 1)

	tests := []struct {
		name   string
		cmd    string
		bundle func(t *testing.T) string
		code   int
		out    string // on stdout with code 0, on stderr otherwise
	}{
		{"bad hash", "check", func(t *testing.T) string { return n.bundle(t, withList([]byte(tamper))) }, 1,
			"PROBLEM  leap-seconds.list: leap: leap-seconds.list hash mismatch"},
		{"expired", "check", func(t *testing.T) string {
			return n.bundle(t, withList(sitetest.LeapList(provT0.Add(-200*day), provT0.Add(-2*day))))
		}, 1, "PROBLEM  leap-seconds.list: expired on 2026-12-01 (checked at 2026-12-03T12:00:00Z)"},
		{"FIFO", "check", func(t *testing.T) string {
			dir := n.bundle(t, nil)
			if err := syscall.Mkfifo(filepath.Join(dir, site.LeapSeconds), 0o600); err != nil {
				t.Skip("no FIFOs here:", err)
			}
			return dir
		}, 1, "PROBLEM  leap-seconds.list: not a regular file"},
		{"good", "install", func(t *testing.T) string { return n.bundle(t, withList(fresh)) }, 0,
			"ok       leap-seconds.list: leap second list updated 2026-12-02, expires 2027-06-21 (200 days left)"},
		{"older than the installed one", "install", func(t *testing.T) string {
			return n.bundle(t, withList(sitetest.LeapList(provT0.Add(-day), provT0.Add(100*day))))
		}, 1, "PROBLEM  leap-seconds.list: expires 2027-03-13, before the installed list (generation "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"provision", tt.cmd}, flags...), tt.bundle(t))
			code, out, errOut := run(args...)
			got := out
			if tt.code != 0 {
				got = errOut
			}
			if code != tt.code || !strings.Contains(got, tt.out) {
				t.Fatalf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", code, tt.code, tt.out, out, errOut)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(n.State, site.Link, site.LeapSeconds)); err != nil || string(b) != string(fresh) {
		t.Fatalf("installed list %q, %v: want the good bundle's", b, err)
	}
}
