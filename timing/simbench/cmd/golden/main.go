// Command golden regenerates the servo's golden sequences in
// timing/servo/testdata from the simulator (go generate ./timing/servo).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aunsorm/timenode/timing/simbench"
)

func main() {
	dir := flag.String("dir", "testdata", "output directory")
	flag.Parse()
	scs := simbench.Scenarios()
	for _, g := range []struct {
		file string
		sc   simbench.Scenario
		kind simbench.Kind
	}{
		{"golden_kalman_b.json", scs[1], simbench.Ours},
		{"golden_kalman_c.json", scs[2], simbench.Ours},
		{"golden_pi_c.json", scs[2], simbench.PI},
	} {
		var buf bytes.Buffer
		buf.WriteString("[\n")
		for i, st := range simbench.Golden(g.sc, g.kind, 300) {
			b, err := json.Marshal(st)
			if err != nil {
				fmt.Fprintln(os.Stderr, "golden:", err)
				os.Exit(1)
			}
			if i > 0 {
				buf.WriteString(",\n")
			}
			buf.Write(b)
		}
		buf.WriteString("\n]\n")
		path := filepath.Join(*dir, g.file)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "golden:", err)
			os.Exit(1)
		}
	}
}
