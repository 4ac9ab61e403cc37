package provision

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/netsvc/site/sitetest"
)

// freshLeap is a leap-seconds.list current at t0, expiring after days.
func freshLeap(days int) []byte {
	return sitetest.LeapList(t0.Add(-30*day), t0.Add(time.Duration(days)*day))
}

// pushedExpiry edits a list's #@ line to a year later, as someone
// stretching an expired list would, without recomputing its #h hash.
func pushedExpiry(t *testing.T, list []byte) []byte {
	t.Helper()
	lines := strings.Split(string(list), "\n")
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, "#@\t"); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			lines[i] = "#@\t" + strconv.FormatUint(n+365*86400, 10)
			return []byte(strings.Join(lines, "\n"))
		}
	}
	t.Fatal("no #@ line")
	return nil
}

// TestCheckLeapList: a bundle's leap-seconds.list is checked with the
// daemon's parser and against the lists the node has; each refusal
// names the file and the dates.
func TestCheckLeapList(t *testing.T) {
	tests := []struct {
		name string
		// setup changes the node, the bundle's files or the bundle
		// directory itself.
		setup func(t *testing.T, n *node, f map[string][]byte, bundle string)
		want  string // a problem naming leap-seconds.list; "" for none
		ok    string // with want "": what the summary says
	}{
		{name: "current list", setup: func(t *testing.T, n *node, f map[string][]byte, _ string) {
			f[site.LeapSeconds] = freshLeap(200)
		}, ok: "leap-seconds.list: leap second list updated 2026-11-03, expires 2027-06-21 (200 days left), TAI−UTC 37 s since 2017-01-01"},
		{name: "hash mismatch", setup: func(t *testing.T, n *node, f map[string][]byte, _ string) {
			f[site.LeapSeconds] = pushedExpiry(t, freshLeap(200))
		}, want: "hash mismatch"},
		{name: "not a leap-seconds.list", setup: func(t *testing.T, n *node, f map[string][]byte, _ string) {
			f[site.LeapSeconds] = []byte("<html>404 not found</html>\n")
		}, want: "malformed leap-seconds.list"},
		{name: "expired", setup: func(t *testing.T, n *node, f map[string][]byte, _ string) {
			f[site.LeapSeconds] = sitetest.LeapList(t0.Add(-200*day), t0.Add(-day))
		}, want: "expired on 2026-12-02 (checked at 2026-12-03T12:00:00Z)"},
		{name: "older than the image's", setup: func(t *testing.T, n *node, f map[string][]byte, _ string) {
			p := filepath.Join(t.TempDir(), "image.list")
			os.WriteFile(p, freshLeap(100), 0o644)
			n.cfg.LeapSeconds = p
			f[site.LeapSeconds] = freshLeap(50)
		}, want: "expires 2027-01-22, before the image's list " /* + path */},
		{name: "older than the installed one", setup: func(t *testing.T, n *node, f map[string][]byte, _ string) {
			first := n.files(t)
			first[site.LeapSeconds] = freshLeap(300)
			if _, err := Install(n.cfg, writeBundle(t, first)); err != nil {
				t.Fatal(err)
			}
			f[site.LeapSeconds] = freshLeap(200)
		}, want: "expires 2027-06-21, before the installed list (generation "},
		{name: "FIFO", setup: func(t *testing.T, n *node, f map[string][]byte, bundle string) {
			if err := syscall.Mkfifo(filepath.Join(bundle, site.LeapSeconds), 0o600); err != nil {
				t.Skip("no FIFOs here:", err)
			}
		}, want: "not a regular file"},
		{name: "too large", setup: func(t *testing.T, n *node, f map[string][]byte, _ string) {
			f[site.LeapSeconds] = append(freshLeap(200), make([]byte, maxFileSize)...)
		}, want: "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t)
			f := n.files(t)
			bundle := t.TempDir()
			tc.setup(t, n, f, bundle)
			for name, b := range f {
				if err := os.WriteFile(filepath.Join(bundle, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r, err := Check(n.cfg, bundle)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if len(r.Problems) > 0 {
					t.Fatalf("refused:\n%s", problemsText(r))
				}
				var files []string
				for _, f := range r.Files {
					files = append(files, f.String())
				}
				if got := strings.Join(files, "\n"); !strings.Contains(got, tc.ok) {
					t.Errorf("summary lacks %q:\n%s", tc.ok, got)
				}
				return
			}
			if len(r.Problems) != 1 || r.Problems[0].File != site.LeapSeconds || !strings.Contains(r.Problems[0].String(), tc.want) {
				t.Fatalf("problems:\n%s\nwant one for %s with %q", problemsText(r), site.LeapSeconds, tc.want)
			}
			if !strings.HasPrefix(r.Problems[0].String(), site.LeapSeconds+": ") {
				t.Errorf("%q does not name the file first", r.Problems[0])
			}
		})
	}
}

// TestInstallLeapList: the list is installed inside the new generation
// with the rest; a later bundle without one keeps it; an older one, a
// tampered one and a FIFO are refused and change nothing.
func TestInstallLeapList(t *testing.T) {
	n := newNode(t)
	f := n.files(t)
	list := freshLeap(200)
	f[site.LeapSeconds] = list
	res, err := Install(n.cfg, writeBundle(t, f))
	if err != nil {
		t.Fatal(err)
	}
	gen := res.Generation
	if got := readFile(t, filepath.Join(n.State, site.Link, site.LeapSeconds)); string(got) != string(list) {
		t.Fatal("S/site/leap-seconds.list is not the bundle's list")
	}
	if !strings.Contains(strings.Join(res.Changes, "\n"), "leap-seconds.list: new") {
		t.Errorf("changes %q do not mention the new list", res.Changes)
	}

	// Refused: the generation stays current, its list untouched.
	for name, mod := range map[string]func(string){
		"older": func(dir string) {
			os.WriteFile(filepath.Join(dir, site.LeapSeconds), freshLeap(100), 0o600)
		},
		"tampered": func(dir string) {
			os.WriteFile(filepath.Join(dir, site.LeapSeconds), pushedExpiry(t, freshLeap(300)), 0o600)
		},
		"FIFO": func(dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, site.LeapSeconds), 0o600); err != nil {
				t.Skip("no FIFOs here:", err)
			}
		},
	} {
		dir := writeBundle(t, n.files(t))
		mod(dir)
		_, err := Install(n.cfg, dir)
		var refused *RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), site.LeapSeconds) {
			t.Fatalf("%s list: %v, want a refusal naming %s", name, err, site.LeapSeconds)
		}
		if n.link(t) != gen {
			t.Fatalf("%s list: the current generation changed", name)
		}
	}

	// A bundle without the list keeps the installed one, saying so.
	f = n.files(t)
	f[site.AllowList] = []byte("other.test.example\n")
	res, err = Install(n.cfg, writeBundle(t, f))
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation == gen {
		t.Fatal("the allow-list change made no new generation")
	}
	if got := readFile(t, filepath.Join(n.State, site.Link, site.LeapSeconds)); string(got) != string(list) {
		t.Fatal("a bundle without a list dropped the installed one")
	}
	var warned bool
	for _, w := range res.Report.Warnings {
		warned = warned || w.File == site.LeapSeconds && strings.Contains(w.Msg, "is kept")
	}
	if !warned {
		t.Errorf("no warning that the installed list is kept: %v", res.Report.Warnings)
	}
	n.assertClean(t)
}
