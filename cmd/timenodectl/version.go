package main

import (
	"fmt"
	"io"

	"github.com/aunsorm/timenode/cmd/internal/version"
)

func init() {
	register("version", "print the version and the commit this tool was built from", versionCmd)
}

// versionCmd prints the same line as timenoded --version, for this tool.
func versionCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: timenodectl version")
		return 2
	}
	fmt.Fprintln(stdout, version.Get().Line("timenodectl"))
	return 0
}
