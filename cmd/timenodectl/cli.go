package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"

	"github.com/aunsorm/timenode/signer"
)

// leaf is one runnable command with a flag set of its own, so "-h" lists
// only its flags and a flag of a sibling is an error, not silently
// accepted.
type leaf struct {
	use     string // the arguments after the flags in the synopsis: "URL|FILE", "FILE..."
	summary string // one line, in the group's listing and under the synopsis
	help    string // more, printed by -h (optional)
	args    argRange
	// flags declares the command's flags and returns what runs once they
	// and the arguments are parsed and counted.
	flags func(fs *flag.FlagSet) runFunc
}

// runFunc runs a command with its positional arguments and returns the
// exit code: 0 done, 1 failed (or a check that found something), 2 usage.
type runFunc func(args []string, stdout, stderr io.Writer) int

// argRange is how many positional arguments a command takes; max < 0
// means no limit.
type argRange struct{ min, max int }

var (
	noArgs    = argRange{0, 0}
	oneArg    = argRange{1, 1}
	optOneArg = argRange{0, 1}
	someArgs  = argRange{1, -1}
)

// addLeaf registers a leaf command in the set.
func (s *commandSet) addLeaf(name string, l leaf) {
	prog := s.prog + " " + name
	s.add(name, l.summary, func(args []string, stdout, stderr io.Writer) int {
		return runLeaf(prog, l, args, stdout, stderr)
	})
	c := s.cmds[name]
	c.leaf = &l
	s.cmds[name] = c
}

// registerLeaf registers a top-level leaf command.
func registerLeaf(name string, l leaf) { commands.addLeaf(name, l) }

// runLeaf parses the flags anywhere among the arguments ("verify URL
// --cacert F" as well as "verify --cacert F URL"), answers -h on stdout
// with exit 0, and refuses a bad flag or a wrong number of arguments on
// stderr with exit 2, naming the command and how to get its help.
func runLeaf(prog string, l leaf, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet(prog, flag.ContinueOnError)
	fset.SetOutput(io.Discard) // every message is written below, where it belongs
	fset.Usage = func() {}
	run := l.flags(fset)
	pos, err := parseInterleaved(fset, args)
	if errors.Is(err, flag.ErrHelp) {
		writeHelp(stdout, prog, l, fset)
		return 0
	}
	if err == nil {
		err = l.args.check(l.use, pos)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n%s\nrun '%s -h' for its flags\n", prog, err, synopsis(prog, l, fset), prog)
		return 2
	}
	return run(pos, stdout, stderr)
}

// check counts the positional arguments against the range, naming what
// is missing or extra.
func (r argRange) check(use string, pos []string) error {
	switch {
	case len(pos) < r.min:
		return fmt.Errorf("missing %s", strings.Trim(use, "[]."))
	case r.max >= 0 && len(pos) > r.max:
		if r.max == 0 {
			return fmt.Errorf("unexpected argument %q", pos[0])
		}
		return fmt.Errorf("unexpected argument %q after %s", pos[r.max], strings.Join(pos[:r.max], " "))
	}
	return nil
}

// parseInterleaved parses flags before, between and after the
// positional arguments; after "--" everything is an argument.
func parseInterleaved(fset *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fset.Parse(args); err != nil {
			return nil, err
		}
		rest := fset.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// synopsis is the one-line usage: the command, [flags] when it has any,
// and its arguments.
func synopsis(prog string, l leaf, fset *flag.FlagSet) string {
	s := "usage: " + prog
	n := 0
	fset.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		s += " [flags]"
	}
	if l.use != "" {
		s += " " + l.use
	}
	return s
}

// writeHelp prints the synopsis, the summary, the longer help and every
// flag with its default.
func writeHelp(w io.Writer, prog string, l leaf, fset *flag.FlagSet) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n%s\n", synopsis(prog, l, fset), l.summary)
	if l.help != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(l.help, "\n"))
	}
	first := true
	fset.VisitAll(func(f *flag.Flag) {
		if first {
			b.WriteString("\nflags:\n")
			first = false
		}
		kind, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if kind != "" {
			fmt.Fprintf(&b, " %s", kind)
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		fmt.Fprintf(&b, "\n      %s\n", usage)
	})
	io.WriteString(w, b.String())
}

// fail reports a failed command with a hint for the common mistakes and
// returns exit code 1.
func fail(stderr io.Writer, prog string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	if h := hintFor(err); h != "" {
		fmt.Fprintf(stderr, "hint: %s\n", h)
	}
	return 1
}

// hintFor names the usual cause of an error an operator meets, or "".
func hintFor(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var opErr *net.OpError
	msg := err.Error()
	switch {
	case errors.As(err, &unknown) || strings.Contains(msg, "certificate signed by unknown authority"):
		return "the server's certificate is not from a CA this command trusts: pass --cacert FILE with the CA that issued it (the site's server CA, or the dev CA `make run` printed)"
	case errors.As(err, &host) || strings.Contains(msg, "certificate is valid for"):
		return "connect with a name or address the server's certificate lists (see the error), or issue the certificate with that name (timenodectl certs csr --san)"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "a certificate has expired or is not yet valid: check this host's clock and `timenodectl certs audit`"
	case strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") || strings.Contains(msg, "unknown certificate authority"):
		return "the server wants a client certificate it trusts: pass --cert and --key issued by the site's client CA, for a name on the node's allow-list"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens there: is timenoded running (systemctl status timenoded) and is the port right?"
	case errors.As(err, &opErr) && opErr.Timeout():
		return "no answer in time: check the address, and the node's firewall (the client must be in the site's client set)"
	case errors.Is(err, fs.ErrPermission):
		return "the file belongs to the daemon's user: run with sudo"
	case errors.Is(err, signer.ErrIntegrityNotTrusted):
		return "the node signed that it does not trust its GNSS fully (its /health integrity object says why, docs/INTEGRITY.md what each reason means); without --require-trusted a suspect node's attestation is accepted with its widened bound"
	}
	return ""
}

// usageErr reports a usage mistake found after parsing (a required flag
// left out, a bad value) and returns exit code 2.
func usageErr(stderr io.Writer, prog, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s\nrun '%s -h' for its flags\n", prog, fmt.Sprintf(format, args...), prog)
	return 2
}
