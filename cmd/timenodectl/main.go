// Command timenodectl is the operator's CLI for timenode appliances:
// verifying attestations, managing keys and certificates, auditing mTLS
// material and reading AppArmor denials. Each subcommand lives in its own
// file and registers itself in commands.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand group ("attestation", "keys", ...).
type command struct {
	summary string
	// run gets the arguments after the group name and returns the exit code.
	run func(args []string, stdout, stderr io.Writer) int
	// leaf or group is what run runs, for the tests that walk every
	// command; nil for a command added with a bare run function.
	leaf  *leaf
	group *commandSet
}

// commandSet is a group of named subcommands with one usage listing: the
// top-level commands, and groups such as "certs" whose subcommands live in
// several files.
type commandSet struct {
	prog  string // as usage names it: "timenodectl", "timenodectl certs"
	noun  string // what the first argument is: "COMMAND", "SUBCOMMAND"
	width int    // name column width in the listing
	cmds  map[string]command
}

func newCommandSet(prog, noun string, width int) *commandSet {
	return &commandSet{prog: prog, noun: noun, width: width, cmds: map[string]command{}}
}

// add registers a subcommand; init functions call it, so a duplicate name
// is a programming error.
func (s *commandSet) add(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	if _, dup := s.cmds[name]; dup {
		panic(s.prog + ": duplicate " + strings.ToLower(s.noun) + " " + name)
	}
	s.cmds[name] = command{summary: summary, run: run}
}

// dispatch runs the subcommand args[0]. No argument prints the usage on
// stderr and returns 2; -h, --help or help prints it on stdout and returns
// 0; "help NAME..." is "NAME... -h"; an unknown name says so and returns 2.
func (s *commandSet) dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		s.usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		s.usage(stdout)
		return 0
	case "help":
		if len(args) == 1 {
			s.usage(stdout)
			return 0
		}
		return s.dispatch(append(append([]string{}, args[1:]...), "-h"), stdout, stderr)
	}
	c, ok := s.cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown %s %q\n", s.prog, strings.ToLower(s.noun), args[0])
		s.usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func (s *commandSet) usage(w io.Writer) {
	names := make([]string, 0, len(s.cmds))
	for n := range s.cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s %s [ARGS]\n\n%ss:\n", s.prog, s.noun, strings.ToLower(s.noun))
	for _, n := range names {
		fmt.Fprintf(&b, "  %-*s %s\n", s.width, n, s.cmds[n].summary)
	}
	fmt.Fprintf(&b, "\nrun '%s %s -h' for its flags and arguments\n", s.prog, s.noun)
	io.WriteString(w, b.String())
}

// commands is filled by init functions in this package's files.
var commands = newCommandSet("timenodectl", "COMMAND", 12)

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	commands.add(name, summary, run)
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		return commands.dispatch(append([]string{"version"}, args[1:]...), stdout, stderr)
	}
	return commands.dispatch(args, stdout, stderr)
}

// registerGroup registers a top-level command whose subcommands are added
// to the returned set.
func registerGroup(name, summary string, width int) *commandSet {
	g := newCommandSet(commands.prog+" "+name, "SUBCOMMAND", width)
	register(name, summary, g.dispatch)
	c := commands.cmds[name]
	c.group = g
	commands.cmds[name] = c
	return g
}
