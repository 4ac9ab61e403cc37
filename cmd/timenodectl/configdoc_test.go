package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/cmd/internal/configdoc"
)

var updateDoc = flag.Bool("update", false, "rewrite the generated parts of docs/CONFIGURATION.md")

const configDoc = "../../docs/CONFIGURATION.md"

// TestConfigurationDoc: docs/CONFIGURATION.md lists every timenodectl
// command with the flags its own flag set declares, and every environment
// variable the tool reads.
func TestConfigurationDoc(t *testing.T) {
	leaves := allLeaves(t)
	sort.Slice(leaves, func(i, j int) bool { return strings.Join(leaves[i].path, " ") < strings.Join(leaves[j].path, " ") })
	var b strings.Builder
	for _, lc := range leaves {
		prog := "timenodectl " + strings.Join(lc.path, " ")
		fs := flag.NewFlagSet(prog, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		lc.l.flags(fs)
		fmt.Fprintf(&b, "#### `%s`\n\n%s\n\n", strings.TrimPrefix(synopsis(prog, *lc.l, fs), "usage: "), lc.l.summary)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(&b, "%s\n", configdoc.FlagTable(fs))
		}
	}
	if err := configdoc.Section(configDoc, "timenodectl commands", b.String(), *updateDoc); err != nil {
		t.Fatal(err)
	}
	names, err := configdoc.EnvNames(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 5 {
		t.Fatalf("found only %q read by timenodectl: the scan is broken", names)
	}
	missing, err := configdoc.Undocumented(configDoc, names)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("environment variables read but not documented in %s: %q", configDoc, missing)
	}
}
