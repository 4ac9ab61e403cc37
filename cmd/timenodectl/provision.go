package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/provision"
	"github.com/aunsorm/timenode/netsvc/site"
)

func init() {
	g := registerGroup("provision", "check and install site bundles; rollback, promote, status, csr, bootstrap", 10)
	for _, name := range []string{"check", "install", "rollback", "promote", "status", "csr", "bootstrap"} {
		g.addLeaf(name, provisionSubs[name].leaf())
	}
}

const provisionDirs = `S is the daemon's state directory (default ` + site.DefaultStateDir + `), R the files of root
services (default ` + site.DefaultRootDir + `), T an RFC 3339 time to check certificates
at instead of now, FILE the nftables ruleset site.nft is checked after
(default ` + provision.DefaultRuleset + `).`

// provisionSub describes one subcommand: which flags it takes and how
// many arguments.
type provisionSub struct {
	flags   []string // of "state", "root", "now", "ruleset", "force", "new-pin", "leap-seconds"
	args    int
	argv    string // the argument's name, for usage errors
	summary string
	help    string
	run     func(c provision.Config, force bool, args []string, stdout, stderr io.Writer) int
}

var provisionSubs = map[string]provisionSub{
	"check": {[]string{"state", "root", "now", "ruleset", "new-pin", "leap-seconds"}, 1, "BUNDLE_DIR",
		"validate a bundle against this node and change nothing; exit 1 lists every problem", "", provisionCheck},
	"install": {[]string{"state", "root", "now", "ruleset", "new-pin", "leap-seconds"}, 1, "BUNDLE_DIR",
		"check, then make the bundle the node's site material",
		`A new generation S/.site/GEN is swapped in atomically, files for root
services go into R. A bundle without attestation-cert.pem keeps the
installed one; a different one (a new pinned fingerprint) needs --new-pin.`, provisionInstall},
	"rollback": {[]string{"state", "now", "force"}, 0, "",
		"make the previous generation current again (again: undo)", "", provisionRollback},
	"promote": {[]string{"state", "now"}, 0, "",
		"end a key rotation: the next signing key and its certificate become the only ones",
		"After an interruption, run it again to complete it.", provisionPromote},
	"status": {[]string{"state", "root", "now"}, 0, "",
		"the node's keys, requests, site generation, certificates, settings", "", provisionStatus},
	"csr": {[]string{"state"}, 1, "tls|attestation|next-attestation",
		"print the node's certificate request",
		"For example: ssh node sudo timenodectl provision csr tls > node.csr", provisionCSR},
	"bootstrap": {[]string{"root", "ruleset"}, 1, "DIR",
		"first boot: install a provisioning medium's authorized_keys (required), site.nft and modules.conf into R", "", provisionBootstrap},
}

// leaf makes the subcommand a command of its own, with only its flags.
func (sub provisionSub) leaf() leaf {
	help := provisionDirs
	if sub.help != "" {
		help = sub.help + "\n\n" + help
	}
	return leaf{use: sub.argv, summary: sub.summary, help: help, args: argRange{sub.args, sub.args},
		flags: func(fs *flag.FlagSet) runFunc {
			var c provision.Config
			var now string
			var force bool
			for _, f := range sub.flags {
				switch f {
				case "state":
					fs.StringVar(&c.State, "state", site.DefaultStateDir, "`S`: the daemon's state directory")
				case "root":
					fs.StringVar(&c.Root, "root", site.DefaultRootDir, "`R`: the directory of the files for root services")
				case "now":
					fs.StringVar(&now, "now", "", "`T`: check certificates at this RFC 3339 time instead of now")
				case "ruleset":
					fs.StringVar(&c.Ruleset, "ruleset", provision.DefaultRuleset, "`FILE`: the nftables ruleset site.nft is checked after")
				case "force":
					fs.BoolVar(&force, "force", false, "roll back even to a generation the node would refuse")
				case "leap-seconds":
					fs.StringVar(&c.LeapSeconds, "leap-seconds", site.DefaultLeapSeconds, "`FILE`: the image's leap-seconds.list (the daemon's --leap-seconds, used when the site has none); a bundle's list must not expire before it")
				case "new-pin":
					fs.BoolVar(&c.NewPin, "new-pin", false, "accept a new attestation certificate for the signing key: clients must be given its fingerprint first")
				}
			}
			return func(args []string, stdout, stderr io.Writer) int {
				if now != "" {
					t, err := time.Parse(time.RFC3339, now)
					if err != nil {
						fmt.Fprintf(stderr, "timenodectl provision: --now: %v\n", err)
						return 2
					}
					c.Now = t
				}
				if c.Now.IsZero() {
					c.Now = time.Now()
				}
				return sub.run(c, force, args, stdout, stderr)
			}
		}}
}

func provisionCheck(c provision.Config, _ bool, args []string, stdout, stderr io.Writer) int {
	r, err := provision.Check(c, args[0])
	if err != nil {
		fmt.Fprintf(stderr, "timenodectl provision check: %v\n", hint(err))
		return 1
	}
	fmt.Fprintf(stdout, "bundle %s for the node in %s, checked at %s:\n", args[0], c.State, c.Now.UTC().Format(time.RFC3339))
	printReport(r, stdout, stderr)
	if len(r.Problems) > 0 {
		fmt.Fprintf(stderr, "refused: %d problem%s; nothing was changed\n", len(r.Problems), plural(len(r.Problems)))
		return 1
	}
	fmt.Fprintln(stdout, "OK: `timenodectl provision install` would install it")
	return 0
}

func provisionInstall(c provision.Config, _ bool, args []string, stdout, stderr io.Writer) int {
	res, err := provision.Install(c, args[0])
	var refused *provision.RefusedError
	if errors.As(err, &refused) {
		printReport(refused.Report, io.Discard, stderr)
		fmt.Fprintf(stderr, "refused: %d problem%s in %s; the node is unchanged\n", len(refused.Report.Problems), plural(len(refused.Report.Problems)), args[0])
		return 1
	}
	if err != nil {
		if res != nil {
			printChanges(res, stdout)
		}
		fmt.Fprintf(stderr, "timenodectl provision install: %v\n", hint(err))
		return 1
	}
	fmt.Fprintf(stdout, "installed %s: generation %s is current\n", args[0], res.Generation)
	printChanges(res, stdout)
	fmt.Fprintln(stdout, "checked:")
	printReport(res.Report, stdout, stderr)
	printNext(res, stdout, stderr)
	return 0
}

func provisionRollback(c provision.Config, force bool, _ []string, stdout, stderr io.Writer) int {
	res, err := provision.Rollback(c, force)
	if err != nil {
		fmt.Fprintf(stderr, "timenodectl provision rollback: %v\n", hint(err))
		return 1
	}
	if res.Report != nil && len(res.Report.Problems) > 0 {
		fmt.Fprintln(stderr, "forced: the daemon will refuse this generation:")
		printReport(res.Report, io.Discard, stderr)
	}
	printChanges(res, stdout)
	printNext(res, stdout, stderr)
	return 0
}

func provisionPromote(c provision.Config, _ bool, _ []string, stdout, stderr io.Writer) int {
	res, err := provision.Promote(c)
	if err != nil {
		fmt.Fprintf(stderr, "timenodectl provision promote: %v\n", hint(err))
		return 1
	}
	printChanges(res, stdout)
	printNext(res, stdout, stderr)
	return 0
}

func provisionStatus(c provision.Config, _ bool, _ []string, stdout, stderr io.Writer) int {
	st, err := provision.NodeStatus(c)
	if err != nil {
		fmt.Fprintf(stderr, "timenodectl provision status: %v\n", hint(err))
		return 1
	}
	fmt.Fprintf(stdout, "node (%s, at %s):\n", c.State, c.Now.UTC().Format(time.RFC3339))
	for _, f := range st.Node {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	if st.Site != nil {
		fmt.Fprintf(stdout, "site material (%s):\n", st.Site.Dir)
		for _, f := range st.Site.Files {
			fmt.Fprintf(stdout, "  %s\n", f)
		}
		for _, f := range st.Site.Warnings {
			fmt.Fprintf(stdout, "  warning: %s\n", f)
		}
		for _, f := range st.Site.Problems {
			fmt.Fprintf(stdout, "  PROBLEM: %s\n", indent(f.String()))
		}
	}
	fmt.Fprintln(stdout, "root services:")
	for _, f := range st.Root {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	if !st.Provisioned {
		fmt.Fprintln(stdout, "not provisioned: take the CSRs out with `timenodectl provision csr`, then `timenodectl provision install BUNDLE`")
	}
	return 0
}

func provisionCSR(c provision.Config, _ bool, args []string, stdout, stderr io.Writer) int {
	b, err := provision.CSR(c, args[0])
	if err != nil {
		fmt.Fprintf(stderr, "timenodectl provision csr: %v\n", hint(err))
		return 1
	}
	stdout.Write(b)
	return 0
}

func provisionBootstrap(c provision.Config, _ bool, args []string, stdout, stderr io.Writer) int {
	res, err := provision.Bootstrap(c, args[0])
	var refused *provision.RefusedError
	if errors.As(err, &refused) {
		printReport(refused.Report, io.Discard, stderr)
		fmt.Fprintf(stderr, "refused: %d problem%s on %s; nothing was installed\n", len(refused.Report.Problems), plural(len(refused.Report.Problems)), args[0])
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "timenodectl provision bootstrap: %v\n", hint(err))
		return 1
	}
	fmt.Fprintf(stdout, "medium %s:\n", args[0])
	printChanges(res, stdout)
	fmt.Fprintln(stdout, "checked:")
	printReport(res.Report, stdout, stderr)
	printNext(res, stdout, stderr)
	return 0
}

// printReport writes what each file is to out, warnings and problems to
// errOut (where a script or ssh caller looks for them).
func printReport(r *provision.Report, out, errOut io.Writer) {
	for _, f := range r.Files {
		fmt.Fprintf(out, "  ok       %s\n", indent(f.String()))
	}
	for _, f := range r.Warnings {
		fmt.Fprintf(errOut, "  warning  %s\n", indent(f.String()))
	}
	problems := append([]provision.Finding(nil), r.Problems...)
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].File < problems[j].File })
	for _, f := range problems {
		fmt.Fprintf(errOut, "  PROBLEM  %s\n", indent(f.String()))
	}
}

func printChanges(res *provision.Result, out io.Writer) {
	fmt.Fprintln(out, "changed:")
	for _, ch := range res.Changes {
		fmt.Fprintf(out, "  %s\n", ch)
	}
}

func printNext(res *provision.Result, out, errOut io.Writer) {
	for _, w := range res.Warnings {
		fmt.Fprintf(errOut, "warning: %s\n", w)
	}
	if len(res.Next) > 0 {
		fmt.Fprintln(out, "next:")
		for _, n := range res.Next {
			fmt.Fprintf(out, "  %s\n", n)
		}
	}
}

// indent keeps the continuation lines of a multi-line message (nft's)
// under the first.
func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n           ") }

// hint adds the likely cause of a permission error.
func hint(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (the state directory belongs to the daemon's user: run with sudo)", err)
	}
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
