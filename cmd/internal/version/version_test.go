package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		info Info
		want string
	}{
		{"release build", Info{Release: "0.2.0", Commit: "3f2a9c1d4e5b6a7b8c9d0e1f2a3b4c5d6e7f8a9b"}, "0.2.0+3f2a9c1d4e5b"},
		{"dirty checkout", Info{Release: "0.2.0", Commit: "3f2a9c1d4e5b6a7b", Modified: true}, "0.2.0+3f2a9c1d4e5b-dirty"},
		{"no commit", Info{Release: "0.2.0", Commit: "unknown"}, "0.2.0"},
		{"short commit", Info{Release: "1.0.0", Commit: "abc"}, "1.0.0+abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.info.Version(); got != tc.want {
				t.Errorf("Version() = %q, want %q", got, tc.want)
			}
			prog, v, err := Parse(tc.info.Line("timenoded"))
			if err != nil || prog != "timenoded" || v != tc.want {
				t.Errorf("Parse(Line) = %q, %q, %v", prog, v, err)
			}
		})
	}
	if _, _, err := Parse("garbage"); err == nil {
		t.Error("Parse accepted a line without a version")
	}
}

func TestFromSettings(t *testing.T) {
	rev, mod := fromSettings([]debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}})
	if rev != "abc123" || !mod {
		t.Errorf("got %q %v", rev, mod)
	}
	if rev, mod := fromSettings(nil); rev != "" || mod {
		t.Errorf("empty settings gave %q %v", rev, mod)
	}
}

// TestGet: a test binary carries no link-time commit, so Get falls back
// to the VCS stamp or says "unknown"; it never returns an empty commit.
func TestGet(t *testing.T) {
	i := Get()
	if i.Release != Release || i.Commit == "" || !strings.HasPrefix(i.GoVersion, "go") {
		t.Errorf("Get() = %+v", i)
	}
}
