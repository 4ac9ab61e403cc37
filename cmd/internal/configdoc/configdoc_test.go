package configdoc

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFlagTable(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("dir", "", "key `DIR`ectory | with a pipe")
	fs.Bool("force", false, "overwrite")
	fs.Duration("timeout", 2*time.Second, "wait")
	got := FlagTable(fs)
	for _, want := range []string{
		"| `--dir DIR` |  | key DIRectory \\| with a pipe |",
		"| `--force` |  | overwrite |",
		"| `--timeout duration` | `2s` | wait |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

func TestSectionCompareAndUpdate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "doc.md")
	begin, end := markers("x")
	if err := os.WriteFile(p, []byte("# Doc\n"+begin+"\nold\n"+end+"\ntail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Section(p, "x", "new", false); !errors.Is(err, ErrStale) {
		t.Fatalf("stale section: %v, want ErrStale", err)
	}
	if err := Section(p, "x", "new", true); err != nil {
		t.Fatal(err)
	}
	if err := Section(p, "x", "new", false); err != nil {
		t.Fatalf("after update: %v", err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "# Doc\n"+begin+"\nnew\n"+end+"\ntail\n" {
		t.Errorf("document after update:\n%s", b)
	}
	if err := Section(p, "missing", "x", true); err == nil || !strings.Contains(err.Error(), "BEGIN GENERATED missing") {
		t.Errorf("missing section: %v, want the markers to add", err)
	}
}

func TestEnvNames(t *testing.T) {
	dir := t.TempDir()
	src := `package x
func f(getenv func(string) string) {
	_ = os.Getenv("A_ONE")
	_ = getenv("B_TWO")
	_, _ = os.LookupEnv("C")
	_, _ = secondsEnv(getenv, "D_SECS", 15)
	_ = "NOT_READ"
}`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x_test.go"), []byte(`os.Getenv("TEST_ONLY")`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := EnvNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "A_ONE,B_TWO,C,D_SECS" {
		t.Errorf("names %q", got)
	}
	doc := filepath.Join(dir, "doc.md")
	if err := os.WriteFile(doc, []byte("`A_ONE` and B_TWO"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing, err := Undocumented(doc, got)
	if err != nil || strings.Join(missing, ",") != "B_TWO,C,D_SECS" {
		t.Errorf("undocumented %q, %v", missing, err)
	}
}
