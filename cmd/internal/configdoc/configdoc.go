// Package configdoc keeps docs/CONFIGURATION.md true to the code: the
// flag tables in it are generated from the binaries' flag sets, and the
// tests of each binary check that the generated parts are current and
// that every environment variable the code reads is documented.
package configdoc

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// FlagTable renders a flag set as a Markdown table: flag (with its
// argument's name), default, meaning.
func FlagTable(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("| Flag | Default | Meaning |\n|---|---|---|\n")
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if kind != "" {
			name += " " + kind
		}
		def := f.DefValue
		switch def {
		case "", "false", "[]":
			def = ""
		default:
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", name, def, cell(usage))
	})
	return b.String()
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// markers delimit a generated section.
func markers(name string) (begin, end string) {
	return "<!-- BEGIN GENERATED " + name + " -->", "<!-- END GENERATED " + name + " -->"
}

// ErrStale is returned by Section when the document's section differs
// from what the code generates.
var ErrStale = errors.New("configdoc: generated section is stale")

// Section compares the section called name in the document at path with
// want; with update it rewrites the section instead. The section must
// exist, delimited by its BEGIN/END GENERATED markers.
func Section(path, name, want string, update bool) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin, end := markers(name)
	i := bytes.Index(doc, []byte(begin))
	j := bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		return fmt.Errorf("%s: no section %q: add the lines\n%s\n%s", path, name, begin, end)
	}
	body := "\n" + strings.TrimRight(want, "\n") + "\n"
	have := string(doc[i+len(begin) : j])
	if have == body {
		return nil
	}
	if !update {
		return fmt.Errorf("%w: %s, section %q; regenerate with the test's -update flag", ErrStale, path, name)
	}
	out := append(append(append([]byte{}, doc[:i+len(begin)]...), body...), doc[j:]...)
	return os.WriteFile(path, out, 0o644)
}

// envRead matches the code that reads an environment variable by a
// literal name: os.Getenv, an injected getenv, LookupEnv, and helpers
// named ...Env(getenv, "NAME", ...).
var envRead = regexp.MustCompile(`(?:Getenv|getenv|LookupEnv)\("([A-Z][A-Z0-9_]*)"\)|Env\(getenv, "([A-Z][A-Z0-9_]*)"`)

// EnvNames lists the environment variables the non-test Go files in dir
// read by name, sorted.
func EnvNames(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range envRead.FindAllSubmatch(b, -1) {
			name := string(m[1]) + string(m[2])
			seen[name] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Undocumented returns the names that do not appear in the document as
// code (`NAME`).
func Undocumented(path string, names []string) ([]string, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, n := range names {
		if !bytes.Contains(doc, []byte("`"+n+"`")) {
			missing = append(missing, n)
		}
	}
	return missing, nil
}
