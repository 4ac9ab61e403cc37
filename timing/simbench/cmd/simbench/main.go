// Command simbench runs the clock-discipline simulation bench and prints
// its tables (Markdown). With -doc it also rewrites the generated section of
// that file (between the bench markers).
//
// The many-seed robustness sweep runs -seeds seeds per scenario on
// GOMAXPROCS goroutines (set GOMAXPROCS=1 on a busy machine); -only limits
// the run to that sweep for the named scenarios, to compare servo versions
// quickly (not with -doc).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/aunsorm/timenode/timing/simbench"
)

func main() {
	doc := flag.String("doc", "", "Markdown file whose generated section to rewrite")
	seeds := flag.Int("seeds", 100, "seeds per scenario in the robustness sweep (0: skip it)")
	only := flag.String("only", "", "comma-separated scenario names: run only the robustness sweep for these")
	flag.Parse()
	if *only != "" && *doc != "" {
		fmt.Fprintln(os.Stderr, "simbench: -only writes a partial report; not with -doc")
		os.Exit(2)
	}
	scs := simbench.Scenarios()
	var buf bytes.Buffer
	if *only == "" {
		simbench.WriteReport(&buf)
	} else {
		want := strings.Split(*only, ",")
		var sel []simbench.Scenario
		for _, sc := range scs {
			for _, n := range want {
				if strings.TrimSpace(n) == sc.Name {
					sel = append(sel, sc)
				}
			}
		}
		if len(sel) == 0 {
			fmt.Fprintf(os.Stderr, "simbench: no scenario named in %q\n", *only)
			os.Exit(2)
		}
		scs = sel
	}
	if *seeds > 0 {
		simbench.WriteRobustness(&buf, scs, *seeds, 0)
	}
	os.Stdout.Write(buf.Bytes())
	if *doc != "" {
		if err := simbench.UpdateDoc(*doc, buf.Bytes()); err != nil {
			fmt.Fprintln(os.Stderr, "simbench:", err)
			os.Exit(1)
		}
	}
}
