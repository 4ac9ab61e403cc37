package main

import (
	"flag"
	"io"

	"github.com/aunsorm/timenode/netsvc/monitoring"
)

func init() {
	g := registerGroup("monitoring", "export the alert rules and the Grafana dashboard", 10)
	g.addLeaf("alerts", leaf{args: noArgs, summary: "the Prometheus alert rules, every runbook_url made absolute",
		help: `URL is where this repository's files are served, ending in /, e.g.
https://git.example.com/timenode/-/raw/v0.2.0/`,
		flags: func(fs *flag.FlagSet) runFunc {
			out := fs.String("out", "", "output `FILE` (default stdout)")
			base := fs.String("runbook-base", "", "absolute `URL` of the repository root the runbooks are served from, ending in / (required)")
			return func(_ []string, stdout, stderr io.Writer) int {
				const prog = "timenodectl monitoring alerts"
				if *base == "" {
					return usageErr(stderr, prog, "--runbook-base is required: Alertmanager's users cannot open the repository-relative paths")
				}
				b, err := monitoring.AlertsWithRunbookBase(*base)
				if err != nil {
					return fail(stderr, prog, err)
				}
				return writeOut(*out, b, 0o644, stdout, stderr)
			}
		}})
	g.addLeaf("dashboard", leaf{args: noArgs, summary: "the Grafana dashboard (JSON)",
		flags: func(fs *flag.FlagSet) runFunc {
			out := fs.String("out", "", "output `FILE` (default stdout)")
			return func(_ []string, stdout, stderr io.Writer) int {
				b, err := monitoring.Assets.ReadFile("dashboard.json")
				if err != nil {
					return fail(stderr, "timenodectl monitoring dashboard", err)
				}
				return writeOut(*out, b, 0o644, stdout, stderr)
			}
		}})
}
