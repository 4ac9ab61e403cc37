// Command simbench runs the clock-discipline simulation bench and prints
// its tables (Markdown). With -doc it also rewrites the generated section of
// that file (between the bench markers).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/aunsorm/timenode/timing/simbench"
)

func main() {
	doc := flag.String("doc", "", "Markdown file whose generated section to rewrite")
	flag.Parse()
	var buf bytes.Buffer
	simbench.WriteReport(&buf)
	os.Stdout.Write(buf.Bytes())
	if *doc != "" {
		if err := simbench.UpdateDoc(*doc, buf.Bytes()); err != nil {
			fmt.Fprintln(os.Stderr, "simbench:", err)
			os.Exit(1)
		}
	}
}
