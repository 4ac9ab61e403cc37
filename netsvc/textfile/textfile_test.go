package textfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// write puts a textfile into dir.
func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCollector: the denial counter's file is exported as written; a file
// naming a metric the collector may not export, a malformed file, a
// symlink and an oversized file are each refused whole, flagged by the
// error gauge, and nothing else is lost.
func TestCollector(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "timenode_apparmor.prom", `# HELP mtls_app_armor_denials_total AppArmor denials of timenode's profiles.
# TYPE mtls_app_armor_denials_total counter
mtls_app_armor_denials_total{profile="timenoded"} 3
mtls_app_armor_denials_total{profile="timenode-refresh"} 0
`)
	write(t, dir, "forged.prom", "# TYPE timenode_clock_locked gauge\ntimenode_clock_locked 1\n")
	write(t, dir, "broken.prom", "mtls_app_armor_denials_total{profile=\"x\" 1\n")
	write(t, dir, "big.prom", "# TYPE mtls_app_armor_big gauge\n"+strings.Repeat("mtls_app_armor_big 1\n", MaxFileSize/20+1))
	write(t, dir, "ignored.txt", "mtls_app_armor_denials_total 99\n")
	if err := os.Symlink(filepath.Join(dir, "timenode_apparmor.prom"), filepath.Join(dir, "link.prom")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(dir, "mtls_app_armor_"))
	want := `
# HELP mtls_app_armor_denials_total AppArmor denials of timenode's profiles.
# TYPE mtls_app_armor_denials_total counter
mtls_app_armor_denials_total{profile="timenode-refresh"} 0
mtls_app_armor_denials_total{profile="timenoded"} 3
# HELP timenode_textfile_scrape_error 1 if a textfile could not be read or held a refused metric at this scrape, else 0.
# TYPE timenode_textfile_scrape_error gauge
timenode_textfile_scrape_error{file="big.prom"} 1
timenode_textfile_scrape_error{file="broken.prom"} 1
timenode_textfile_scrape_error{file="forged.prom"} 1
timenode_textfile_scrape_error{file="link.prom"} 1
timenode_textfile_scrape_error{file="timenode_apparmor.prom"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestCollectorEmptyDirectory: no file, no metric, no error: the timer
// has not run yet.
func TestCollectorEmptyDirectory(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(filepath.Join(t.TempDir(), "absent"), "mtls_app_armor_"))
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("%d metrics, %v; want none", n, err)
	}
}

// FuzzCollectorFile: whatever a file holds, a scrape neither panics nor
// exports a name outside the allowed prefix.
func FuzzCollectorFile(f *testing.F) {
	f.Add("# TYPE mtls_app_armor_x counter\nmtls_app_armor_x{a=\"b\"} 1\n")
	f.Add("mtls_app_armor_x 1 1700000000000\n")
	f.Add("# TYPE timenode_x histogram\ntimenode_x_bucket{le=\"1\"} 1\n")
	f.Fuzz(func(t *testing.T, body string) {
		dir := t.TempDir()
		write(t, dir, "f.prom", body)
		reg := prometheus.NewRegistry()
		reg.MustRegister(New(dir, "mtls_app_armor_"))
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if n := mf.GetName(); !strings.HasPrefix(n, "mtls_app_armor_") && n != "timenode_textfile_scrape_error" {
				t.Fatalf("exported %s", n)
			}
		}
	})
}
