package testbin

import (
	"fmt"
	"strings"
	"testing"
)

// outcomeTB records how NeedTool ends a test instead of ending it.
type outcomeTB struct {
	testing.TB
	how, msg string
}

type ended struct{}

func (o *outcomeTB) Helper() {}
func (o *outcomeTB) Fatal(args ...any) {
	o.how, o.msg = "fatal", fmt.Sprint(args...)
	panic(ended{})
}
func (o *outcomeTB) Skip(args ...any) {
	o.how, o.msg = "skip", fmt.Sprint(args...)
	panic(ended{})
}

func needTool(name, pkg string) (path string, o *outcomeTB) {
	o = &outcomeTB{}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(ended); !ok {
				panic(r)
			}
		}
	}()
	return NeedTool(o, name, pkg), o
}

func TestNeedTool(t *testing.T) {
	if p, o := needTool("sh", "dash"); p == "" || o.how != "" {
		t.Fatalf("sh: %q, ended %q", p, o.how)
	}
	tests := []struct{ ci, how string }{{"", "skip"}, {"true", "fatal"}}
	for _, tc := range tests {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			p, o := needTool("timenode-no-such-tool", "timenode-pkg")
			if p != "" || o.how != tc.how || !strings.Contains(o.msg, "install the Debian package timenode-pkg") {
				t.Fatalf("missing tool with CI=%q: path %q, ended %q %q; want %s naming the package", tc.ci, p, o.how, o.msg, tc.how)
			}
		})
	}
	t.Run("absolute path", func(t *testing.T) {
		t.Setenv("CI", "")
		if p, o := needTool("/bin/sh", "dash"); p != "/bin/sh" || o.how != "" {
			t.Fatalf("/bin/sh: %q, ended %q", p, o.how)
		}
		if _, o := needTool("/nonexistent/tool", "x"); o.how != "skip" {
			t.Fatalf("a missing path ended %q, want skip", o.how)
		}
	})
}
