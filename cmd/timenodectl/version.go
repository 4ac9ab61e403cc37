package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/aunsorm/timenode/cmd/internal/version"
)

func init() {
	registerLeaf("version", leaf{args: noArgs, summary: "print the version and the commit this tool was built from",
		help:  "The same line as timenoded --version, and as the timenode_build_info metric's labels.",
		flags: func(*flag.FlagSet) runFunc { return versionCmd }})
}

// versionCmd prints the same line as timenoded --version, for this tool.
func versionCmd(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, version.Get().Line("timenodectl"))
	return 0
}
