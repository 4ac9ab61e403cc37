package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aunsorm/timenode/signer/cmd/vectorgen/vectors"
)

func main() {
	out := flag.String("out", "testdata/attestation", "directory to write the vector files into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "vectorgen:", err)
		os.Exit(1)
	}
}

// run writes every vector file into dir, each atomically (temp file,
// rename), so an interrupted run never leaves a half-written vector.
func run(dir string) error {
	files, err := vectors.Files()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		tmp, err := os.CreateTemp(dir, "."+f.Name+".tmp-*")
		if err != nil {
			return err
		}
		_, werr := tmp.Write(f.Data)
		cerr := tmp.Close()
		if werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Chmod(tmp.Name(), 0o644)
		}
		if werr == nil {
			werr = os.Rename(tmp.Name(), path)
		}
		if werr != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("write %s: %w", path, werr)
		}
	}
	return nil
}
