package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/aunsorm/timenode/netsvc/monitoring"
)

func init() {
	register("monitoring", "export the alert rules and the Grafana dashboard", monitoringCmd)
}

const monitoringUsage = `usage:
  timenodectl monitoring alerts --runbook-base URL [--out FILE]
      the Prometheus alert rules, every runbook_url made absolute: URL is
      where this repository's files are served, ending in /, e.g.
      https://git.example.com/timenode/-/raw/v0.2.0/
  timenodectl monitoring dashboard [--out FILE]
      the Grafana dashboard (JSON)`

func monitoringCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, monitoringUsage)
		return 2
	}
	fs := flag.NewFlagSet("monitoring "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "output file (default stdout)")
	base := fs.String("runbook-base", "", "absolute URL of the repository root the runbooks are served from, ending in /")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch args[0] {
	case "alerts":
		if *base == "" {
			fmt.Fprintln(stderr, "timenodectl monitoring alerts: --runbook-base is required: Alertmanager's users cannot open the repository-relative paths")
			return 2
		}
		b, err := monitoring.AlertsWithRunbookBase(*base)
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl monitoring alerts: %v\n", err)
			return 1
		}
		return writeOut(*out, b, 0o644, stdout, stderr)
	case "dashboard":
		b, err := monitoring.Assets.ReadFile("dashboard.json")
		if err != nil {
			fmt.Fprintf(stderr, "timenodectl monitoring dashboard: %v\n", err)
			return 1
		}
		return writeOut(*out, b, 0o644, stdout, stderr)
	}
	fmt.Fprintln(stderr, monitoringUsage)
	return 2
}
