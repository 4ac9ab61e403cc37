package main

import (
	"flag"
	"io"
	"sort"
	"testing"

	"github.com/aunsorm/timenode/cmd/internal/configdoc"
	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/netsvc/site"
)

var updateDoc = flag.Bool("update", false, "rewrite the generated parts of docs/CONFIGURATION.md")

const configDoc = "../../docs/CONFIGURATION.md"

// TestConfigurationDoc: the daemon's flag table in docs/CONFIGURATION.md
// is the one its flag set generates, and every environment variable the
// daemon, its clock guard and site.env read is documented there.
func TestConfigurationDoc(t *testing.T) {
	fs := flag.NewFlagSet("timenoded", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	declareFlags(fs, &config{})
	if err := configdoc.Section(configDoc, "timenoded flags", configdoc.FlagTable(fs), *updateDoc); err != nil {
		t.Fatal(err)
	}
	names, err := configdoc.EnvNames(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 8 {
		t.Fatalf("found only %q read by the daemon: the scan is broken", names)
	}
	names = append(names, clock.SteerEnv)
	for k := range site.EnvKeys {
		names = append(names, k)
	}
	sort.Strings(names)
	missing, err := configdoc.Undocumented(configDoc, names)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("environment variables read but not documented in %s: %q", configDoc, missing)
	}
}
