package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aunsorm/timenode/netsvc/certaudit"
)

// certsCommands are the "certs" subcommands. Other files add theirs from
// their own init function with registerCerts (e.g. "csr").
var certsCommands = newCommandSet("timenodectl certs", "SUBCOMMAND", 8)

func registerCerts(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	certsCommands.add(name, summary, run)
}

func init() {
	register("certs", "audit certificates against the mTLS expiry policy", certsCmd)
	registerCerts("audit", "inventory a directory of certificates and flag policy breaks", certsAuditCmd)
}

func certsCmd(args []string, stdout, stderr io.Writer) int {
	return certsCommands.dispatch(args, stdout, stderr)
}

// certsAuditCmd exits 0 when nothing must be rotated now, 1 when at
// least one certificate must be rotated (expired, not yet valid with no
// valid sibling, or inside T−14 days), 2 on usage errors or an
// unreadable directory. Alerts and policy violations are reported but do
// not change the exit code.
func certsAuditCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory to walk (PEM, DER and bundles)")
	asJSON := fs.Bool("json", false, "write the JSON report (schema: go doc ./netsvc/certaudit)")
	at := fs.String("at", "", "evaluate at this RFC 3339 time instead of now (what-if)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" && fs.NArg() == 1 {
		*dir = fs.Arg(0)
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "usage: timenodectl certs audit --dir DIR [--json] [--at RFC3339]")
		return 2
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
