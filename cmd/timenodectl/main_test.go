package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDispatchUsageAndExitCodes covers the command sets' shared dispatch:
// the top level and the "certs" group list their subcommands, help is not
// an error, and a missing or unknown name is.
func TestDispatchUsageAndExitCodes(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantOut  []string // on stdout; stderr must then be empty
		wantErr  []string // on stderr; stdout must then be empty
	}{
		{nil, 2, nil, []string{"usage: timenodectl COMMAND", "  attestation ", "  certs "}},
		{[]string{"--help"}, 0, []string{"usage: timenodectl COMMAND", "  refresh "}, nil},
		{[]string{"-h"}, 0, []string{"usage: timenodectl COMMAND"}, nil},
		{[]string{"help"}, 0, []string{"usage: timenodectl COMMAND"}, nil},
		{[]string{"help", "keys", "generate"}, 0, []string{"usage: timenodectl keys generate [flags]", "--if-missing"}, nil},
		{[]string{"nope"}, 2, nil, []string{`timenodectl: unknown command "nope"`, "usage: timenodectl COMMAND"}},
		{[]string{"certs"}, 2, nil, []string{"usage: timenodectl certs SUBCOMMAND", "  audit ", "  csr "}},
		{[]string{"certs", "help"}, 0, []string{"usage: timenodectl certs SUBCOMMAND"}, nil},
		{[]string{"certs", "nope"}, 2, nil, []string{`timenodectl certs: unknown subcommand "nope"`, "  csr "}},
		// The findings: -h of a group is not a subcommand, and a
		// leaf lists only its own flags.
		{[]string{"ca", "-h"}, 0, []string{"usage: timenodectl ca SUBCOMMAND", "  create-dev "}, nil},
		{[]string{"keys", "-h"}, 0, []string{"usage: timenodectl keys SUBCOMMAND", "  roughtime "}, nil},
		{[]string{"ca", "create-dev", "-h"}, 0, []string{"usage: timenodectl ca create-dev [flags]", "--dir DIR", "--name"}, nil},
		{[]string{"ca", "create-dev", "--csr", "x"}, 2, nil, []string{"flag provided but not defined: -csr", "timenodectl ca create-dev -h"}},
		{[]string{"--version"}, 0, []string{"timenodectl "}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := dispatch(tt.args, &out, &errOut); code != tt.wantCode {
				t.Errorf("exit %d, want %d\n%s", code, tt.wantCode, errOut.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			if tt.wantOut != nil && errOut.Len() > 0 {
				t.Errorf("stderr %q, want nothing", errOut.String())
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
			if tt.wantErr != nil && out.Len() > 0 {
				t.Errorf("stdout %q, want nothing", out.String())
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

// leafCase is one leaf command found by walking the command tree.
type leafCase struct {
	path []string
	l    *leaf
}

// allLeaves walks every registered command, so a command added later is
// covered by the convention tests without being listed.
func allLeaves(t *testing.T) []leafCase {
	t.Helper()
	var out []leafCase
	var walk func(prefix []string, s *commandSet)
	walk = func(prefix []string, s *commandSet) {
		for name, c := range s.cmds {
			p := append(append([]string{}, prefix...), name)
			switch {
			case c.leaf != nil:
				out = append(out, leafCase{p, c.leaf})
			case c.group != nil:
				walk(p, c.group)
			default:
				t.Errorf("%s: registered without a leaf or group, so its conventions cannot be checked", strings.Join(p, " "))
			}
		}
	}
	walk(nil, commands)
	if len(out) < 20 {
		t.Fatalf("found %d leaf commands, want every one (20 or more)", len(out))
	}
	return out
}

// TestEveryCommandFollowsConventions: for every leaf command, -h prints
// its usage and only its flags on stdout with exit 0; an unknown flag and
// a missing or extra argument exit 2 on stderr, naming the command and how
// to get its help, before anything runs.
func TestEveryCommandFollowsConventions(t *testing.T) {
	for _, lc := range allLeaves(t) {
		name := strings.Join(lc.path, " ")
		t.Run(name, func(t *testing.T) {
			prog := "timenodectl " + name
			for _, h := range []string{"-h", "--help"} {
				code, out, errOut := run(append(lc.path, h)...)
				if code != 0 || errOut != "" || !strings.HasPrefix(out, "usage: "+prog) || !strings.Contains(out, lc.l.summary) {
					t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout", prog, h, code, out, errOut)
				}
				fs := flag.NewFlagSet(prog, flag.ContinueOnError)
				lc.l.flags(fs)
				fs.VisitAll(func(f *flag.Flag) {
					if !strings.Contains(out, "--"+f.Name) {
						t.Errorf("%s -h does not list --%s", prog, f.Name)
					}
				})
			}
			code, out, errOut := run(append(lc.path, "--no-such-flag")...)
			if code != 2 || out != "" || !strings.Contains(errOut, "-no-such-flag") || !strings.Contains(errOut, prog+" -h") {
				t.Errorf("bad flag: exit %d, stdout %q, stderr %q; want 2 and the flag named on stderr", code, out, errOut)
			}
			if lc.l.args.min > 0 {
				code, out, errOut := run(lc.path...)
				if code != 2 || out != "" || !strings.Contains(errOut, prog+": missing ") {
					t.Errorf("no argument: exit %d, stdout %q, stderr %q; want 2 and what is missing", code, out, errOut)
				}
			}
			if max := lc.l.args.max; max >= 0 {
				extra := append(append([]string{}, lc.path...), make([]string, max+1)...)
				for i := range max + 1 {
					extra[len(lc.path)+i] = fmt.Sprintf("arg%d", i)
				}
				code, out, errOut := run(extra...)
				if code != 2 || out != "" || !strings.Contains(errOut, "unexpected argument") {
					t.Errorf("%d arguments: exit %d, stdout %q, stderr %q; want 2 and the extra one named", max+1, code, out, errOut)
				}
			}
		})
	}
}

// TestFlagsAnywhere: flags after the arguments, and "--" ending them.
func TestFlagsAnywhere(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	v := fs.Bool("v", false, "")
	n := fs.Int("n", 0, "")
	pos, err := parseInterleaved(fs, []string{"a", "-v", "b", "--n", "3", "c", "--", "-d", "e"})
	if err != nil {
		t.Fatal(err)
	}
	if !*v || *n != 3 || strings.Join(pos, ",") != "a,b,c,-d,e" {
		t.Errorf("v=%v n=%d pos=%q, want true 3 [a b c -d e]", *v, *n, pos)
	}
}

// TestHints: the mistakes an operator makes get a line that names the fix.
func TestHints(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{x509.UnknownAuthorityError{}, "--cacert"},
		{fmt.Errorf("fetch: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), "is timenoded running"},
		{errors.New("remote error: tls: certificate required"), "--cert and --key"},
		{x509.HostnameError{Certificate: &x509.Certificate{}, Host: "10.0.0.1"}, "certs csr --san"},
		{fmt.Errorf("open: %w", fs.ErrPermission), "sudo"},
		{errors.New("something else"), ""},
	}
	for _, tt := range tests {
		got := hintFor(tt.err)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("hintFor(%v) = %q, want one naming %q", tt.err, got, tt.want)
		}
	}
}

// TestApparmorDenialsRefusesATerminal: with no FILE and a terminal on
// standard input the command would wait silently; it says what to give.
func TestApparmorDenialsRefusesATerminal(t *testing.T) {
	was := stdinIsTerminal
	t.Cleanup(func() { stdinIsTerminal = was })
	stdinIsTerminal = func() bool { return true }
	code, out, errOut := run("apparmor", "denials")
	if code != 2 || out != "" || !strings.Contains(errOut, "no input") || !strings.Contains(errOut, "journalctl -k -o cat |") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2 and how to give the log", code, out, errOut)
	}
}

// TestNMEAStatsSeveralFiles: one table per capture, and a JSON array
// whose entries match expected.json's figures.
func TestNMEAStatsSeveralFiles(t *testing.T) {
	files := []string{"../../testdata/nmea/garmin48.log", "../../testdata/nmea/GPSmap-76S.log"}
	code, out, errOut := run(append([]string{"nmea", "stats"}, files...)...)
	if code != 0 || strings.Count(out, "\nsentences ") != 2 || strings.Count(out, "file              ") != 2 {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s\nwant two tables", code, errOut, out)
	}
	code, out, errOut = run(append([]string{"nmea", "stats", "--json"}, files...)...)
	var got []nmeaFigures
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 2 {
		t.Fatalf("--json: exit %d, stderr %q, stdout:\n%s\nwant an array of two", code, errOut, out)
	}
	b, err := os.ReadFile("../../testdata/nmea/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Files []nmeaFigures `json:"files"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		found := false
		for _, w := range want.Files {
			if w.File == g.File {
				found = true
				if w.SentencesTotal != g.SentencesTotal || w.ChecksumBad != g.ChecksumBad || w.RMCValid != g.RMCValid {
					t.Errorf("%s: %d sentences, %d bad, %d valid RMC; expected.json says %d, %d, %d", g.File,
						g.SentencesTotal, g.ChecksumBad, g.RMCValid, w.SentencesTotal, w.ChecksumBad, w.RMCValid)
				}
			}
		}
		if !found || g.File != filepath.Base(files[i]) {
			t.Errorf("entry %d is %q, want %q from expected.json", i, g.File, filepath.Base(files[i]))
		}
	}
}
