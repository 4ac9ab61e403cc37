package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aunsorm/timenode/netsvc/certaudit"
)

// certsCommands are the "certs" subcommands; other files add theirs
// from their own init function (e.g. "csr").
var certsCommands = registerGroup("certs", "audit certificates against the mTLS expiry policy; the node's TLS CSR", 8)

func init() {
	certsCommands.addLeaf("audit", leaf{use: "[DIR]", args: optOneArg,
		summary: "inventory a directory of certificates and flag policy breaks",
		help: `Exit 0 when nothing must be rotated now, 1 when at least one certificate
must be rotated (expired, not yet valid with no valid sibling, or inside
T-14 days), 2 on usage errors or an unreadable directory. Alerts and
policy violations are reported but do not change the exit code.`,
		flags: certsAudit})
}

func certsAudit(fs *flag.FlagSet) runFunc {
	dir := fs.String("dir", "", "directory `DIR` to walk (PEM, DER and bundles); or give it as the argument")
	asJSON := fs.Bool("json", false, "write the JSON report (schema: go doc ./netsvc/certaudit)")
	at := fs.String("at", "", "evaluate at this RFC 3339 time instead of now (what-if)")
	return func(args []string, stdout, stderr io.Writer) int {
		const prog = "timenodectl certs audit"
		if len(args) == 1 {
			if *dir != "" {
				return usageErr(stderr, prog, "give the directory once: --dir or the argument")
			}
			*dir = args[0]
		}
		if *dir == "" {
			return usageErr(stderr, prog, "missing DIR")
		}
		now := time.Now()
		if *at != "" {
			t, err := time.Parse(time.RFC3339, *at)
			if err != nil {
				fmt.Fprintf(stderr, "timenodectl certs audit: --at: %v\n", err)
				return 2
			}
			now = t
		}
		files, err := certaudit.Scan(*dir)
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl: %v\n", err)
			return 2
		}
		r := certaudit.Audit(*dir, files, now, certaudit.DefaultPolicy())
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			err = enc.Encode(r)
		} else {
			err = r.WriteTable(stdout)
		}
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl: %v\n", err)
			return 2
		}
		if r.RotateNow > 0 {
			return 1
		}
		return 0
	}
}
