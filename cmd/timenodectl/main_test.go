package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestDispatchUsageAndExitCodes covers the command sets' shared dispatch:
// the top level and the "certs" group list their subcommands, help is not
// an error, and a missing or unknown name is.
func TestDispatchUsageAndExitCodes(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantErr  []string
	}{
		{nil, 2, []string{"usage: timenodectl COMMAND", "  attestation ", "  certs "}},
		{[]string{"--help"}, 0, []string{"usage: timenodectl COMMAND", "  refresh "}},
		{[]string{"nope"}, 2, []string{`timenodectl: unknown command "nope"`, "usage: timenodectl COMMAND"}},
		{[]string{"certs"}, 2, []string{"usage: timenodectl certs SUBCOMMAND", "  audit ", "  csr "}},
		{[]string{"certs", "help"}, 0, []string{"usage: timenodectl certs SUBCOMMAND"}},
		{[]string{"certs", "nope"}, 2, []string{`timenodectl certs: unknown subcommand "nope"`, "  csr "}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := dispatch(tt.args, &out, &errOut); code != tt.wantCode {
				t.Errorf("exit %d, want %d\n%s", code, tt.wantCode, errOut.String())
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
		})
	}
}

// TestCommandSetRefusesDuplicates: two files registering one name is a
// programming error caught at start, not a silent override.
func TestCommandSetRefusesDuplicates(t *testing.T) {
	s := newCommandSet("x", "COMMAND", 4)
	s.add("a", "first", nil)
	defer func() {
		if recover() == nil {
			t.Error("second add of the same name did not panic")
		}
	}()
	s.add("a", "second", nil)
}
