package apparmorlog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readFixtures(t *testing.T, f Filter) []Denial {
	t.Helper()
	var all []Denial
	for _, name := range []string{"kern.log", "journal.log", "audit.log"} {
		fh, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		ds, err := Read(fh, f)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ds...)
	}
	return all
}

func TestReadAndSummarize(t *testing.T) {
	tests := []struct {
		name    string
		filter  Filter
		total   int
		byClass map[Class]int
	}{
		{"default profiles", Filter{}, 17, map[Class]int{FileRead: 6, FileWrite: 2, NetworkBind: 1, NetworkConnect: 3, NetworkOther: 1, Capability: 2, Ptrace: 1, Other: 1}},
		{"one profile", Filter{Profiles: []string{"timenode-refresh"}}, 2, map[Class]int{NetworkConnect: 2}},
		{"other profile", Filter{Profiles: []string{"/usr/sbin/chronyd"}}, 1, map[Class]int{FileRead: 1}},
		// The journal's unstamped AVC copy is kept: it has no time to compare.
		{"since", Filter{Since: time.Unix(1772366400, 0)}, 5, map[Class]int{FileRead: 2, Capability: 1, NetworkConnect: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(readFixtures(t, tt.filter))
			if s.Total != tt.total {
				t.Errorf("total %d, want %d", s.Total, tt.total)
			}
			for _, c := range Classes() {
				if s.ByClass[c] != tt.byClass[c] {
					t.Errorf("%s: %d, want %d", c, s.ByClass[c], tt.byClass[c])
				}
			}
		})
	}
}

func TestReadDropsDuplicateRecords(t *testing.T) {
	line := fixtureLine(t, "kern.log", "server.key")
	ds, err := Read(strings.NewReader(line+"\n"+line+"\n"), Filter{})
	if err != nil || len(ds) != 1 {
		t.Fatalf("got %d denials, %v; want 1", len(ds), err)
	}
}

func TestWriteTextAndTextfile(t *testing.T) {
	s := Summarize(readFixtures(t, Filter{}))
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"17 denials", "# rules for profile timenoded", "  capability sys_resource,", "(review by hand)", "# rules for profile timenode-refresh"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	tally := NewTally()
	tally.Add(s)
	tally.Add(s)
	dir := t.TempDir()
	path := filepath.Join(dir, "timenode_apparmor.prom")
	if err := tally.WriteTextfile(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE mtls_app_armor_denials_total counter",
		`mtls_app_armor_denials_total{class="file_read",profile="timenoded"} 12`,
		`mtls_app_armor_denials_total{class="network_connect",profile="timenode-refresh"} 4`,
		`mtls_app_armor_denials_total{class="ptrace",profile="timenode-refresh"} 0`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("textfile lacks %q:\n%s", want, got)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	if err := tally.WriteTextfile(filepath.Join(dir, "x.txt")); err == nil {
		t.Error("WriteTextfile accepted a name node_exporter ignores")
	}
}
