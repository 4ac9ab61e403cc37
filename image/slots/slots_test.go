package slots

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// entryBody is a loader entry as image/build.sh and the install hook write it.
func entryBody(slot string, version int) string {
	return fmt.Sprintf("title timenode (slot %s)\nsort-key timenode\nversion %d\nlinux /timenode/%s/vmlinuz\ninitrd /timenode/%s/initrd.img\noptions root=PARTUUID=x ro rauc.slot=%s\n",
		slot, version, slot, slot, slot)
}

// newESP is an ESP as flashed: slot a committed, no entry for b.
func newESP(t *testing.T) ESP {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, EntriesDir), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "timenode-a.conf", entryBody("a", 1))
	return ESP{Dir: dir}
}

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, EntriesDir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// firmwareBoot plays systemd-boot with the loader.conf the image ships
// ("default timenode-*"): the first entry in its order boots, and an entry
// with a counter is renamed with one try fewer left and one more done
// before it boots. It returns the slot booted.
func firmwareBoot(t *testing.T, e ESP) string {
	t.Helper()
	es, err := e.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		t.Fatal("no entry to boot")
	}
	b := es[0]
	if b.Left > 0 {
		dir := filepath.Join(e.Dir, EntriesDir)
		next := fmt.Sprintf("%s%s+%d-%d.conf", Prefix, b.Slot, b.Left-1, b.Done+1)
		if err := os.Rename(filepath.Join(dir, b.Name), filepath.Join(dir, next)); err != nil {
			t.Fatal(err)
		}
	}
	return b.Slot
}

// install plays RAUC installing into slot: set-state bad, the slot
// written, the post-install hook's entry, set-primary.
func install(t *testing.T, e ESP, slot string) {
	t.Helper()
	if err := e.SetState(slot, Bad); err != nil {
		t.Fatal(err)
	}
	if err := e.Install(slot, []byte(entryBody(slot, 0))); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.State(slot); st != Bad {
		t.Fatalf("installed slot %s is %s before set-primary: a crash now must not boot it", slot, st)
	}
	if err := e.SetPrimary(slot, DefaultTries); err != nil {
		t.Fatal(err)
	}
}

func names(t *testing.T, e ESP) []string {
	t.Helper()
	es, err := e.Entries()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ent := range es {
		out = append(out, ent.Name)
	}
	return out
}

func TestUpdateCommitsAfterAHealthyTrial(t *testing.T) {
	e := newESP(t)
	if got := firmwareBoot(t, e); got != "a" {
		t.Fatalf("flashed appliance boots %s, want a", got)
	}
	install(t, e, "b")
	if p, _ := e.Primary(); p != "b" {
		t.Fatalf("primary after install = %s, want b", p)
	}
	if got := firmwareBoot(t, e); got != "b" {
		t.Fatalf("trial boot went to %s, want b", got)
	}
	ent, err := e.Find("b")
	if err != nil || !ent.InTrial() || ent.Left != DefaultTries-1 || ent.Done != 1 {
		t.Fatalf("b after one trial boot: %+v, %v", ent, err)
	}
	// The gate commits.
	if err := e.SetState("b", Good); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if got := firmwareBoot(t, e); got != "b" {
			t.Fatalf("boot %d after commit went to %s, want b", i, got)
		}
	}
	if got, want := names(t, e), []string{"timenode-b.conf", "timenode-a.conf"}; !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	// The next update goes back into a, above b.
	install(t, e, "a")
	if got := firmwareBoot(t, e); got != "a" {
		t.Fatalf("second update's trial went to %s, want a", got)
	}
}

func TestUpdateRollsBackWhenTheTrialRunsOut(t *testing.T) {
	e := newESP(t)
	install(t, e, "b")
	for i := 0; i < DefaultTries; i++ {
		if got := firmwareBoot(t, e); got != "b" {
			t.Fatalf("trial boot %d went to %s, want b", i+1, got)
		}
		// The gate finds the node unhealthy and reboots.
	}
	if got := firmwareBoot(t, e); got != "a" {
		t.Fatalf("after %d failed trials the firmware booted %s, want the old slot a", DefaultTries, got)
	}
	if st, _ := e.State("b"); st != Bad {
		t.Fatalf("state of the failed slot = %s, want bad", st)
	}
	if st, _ := e.State("a"); st != Good {
		t.Fatalf("state of the old slot = %s, want good", st)
	}
	ent, _ := e.Find("b")
	if ent.Done != DefaultTries {
		t.Fatalf("failed slot records %d tries done, want %d", ent.Done, DefaultTries)
	}
	if p, _ := e.Primary(); p != "a" {
		t.Fatalf("primary after rollback = %s, want a", p)
	}
	// A fixed bundle installs into b again and boots.
	install(t, e, "b")
	if got := firmwareBoot(t, e); got != "b" {
		t.Fatalf("re-install's trial went to %s, want b", got)
	}
}

func TestCrashDuringInstallNeverBootsAHalfWrittenSlot(t *testing.T) {
	e := newESP(t)
	install(t, e, "b")
	if err := e.SetState("b", Good); err != nil {
		t.Fatal(err)
	}
	// The next update targets a (the inactive slot) and stops after
	// RAUC marked it bad, before set-primary.
	if err := e.SetState("a", Bad); err != nil {
		t.Fatal(err)
	}
	if err := e.Install("a", []byte(entryBody("a", 0))); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if got := firmwareBoot(t, e); got != "b" {
			t.Fatalf("boot %d after an interrupted install went to %s, want the running slot b", i, got)
		}
	}
}

func TestEntriesRefusesAmbiguity(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"two entries for one slot", map[string]string{"timenode-a.conf": entryBody("a", 1), "timenode-a+1-1.conf": entryBody("a", 2)}, "both describe slot a"},
		{"version not a number", map[string]string{"timenode-a.conf": "title x\nversion 1.2\n"}, `version "1.2"`},
		{"negative version", map[string]string{"timenode-a.conf": "title x\nversion -1\n"}, `version "-1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, EntriesDir), 0o755)
			for n, b := range tc.files {
				write(t, dir, n, b)
			}
			_, err := ESP{Dir: dir}.Entries()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Entries() error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestEntriesIgnoresOtherFiles(t *testing.T) {
	e := newESP(t)
	write(t, e.Dir, "debian.conf", "title other\n")
	write(t, e.Dir, ".tmp-timenode-b+2.conf", entryBody("b", 9))
	write(t, e.Dir, "timenode-B.conf", entryBody("B", 9))
	if got := names(t, e); !slices.Equal(got, []string{"timenode-a.conf"}) {
		t.Fatalf("entries %v, want only timenode-a.conf", got)
	}
}

func TestStateOfAMissingSlotIsBad(t *testing.T) {
	e := newESP(t)
	st, err := e.State("b")
	if err != nil || st != Bad {
		t.Fatalf("State(b) = %s, %v; want bad (nothing to boot)", st, err)
	}
	if err := e.SetState("b", Bad); err != nil {
		t.Fatalf("marking a missing slot bad: %v", err)
	}
	if err := e.SetState("b", Good); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("committing a missing slot: %v, want ErrNoEntry", err)
	}
	if err := e.SetPrimary("b", 2); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("SetPrimary of a missing slot: %v, want ErrNoEntry", err)
	}
	if err := e.SetPrimary("a", 0); err == nil {
		t.Fatal("SetPrimary with 0 tries succeeded")
	}
	if err := e.SetState("a", "maybe"); err == nil {
		t.Fatal(`SetState("maybe") succeeded`)
	}
}

func TestWritableWrapsEveryChange(t *testing.T) {
	e := newESP(t)
	opened, closed := 0, 0
	e.Writable = func() (func() error, error) {
		opened++
		return func() error { closed++; return nil }, nil
	}
	install(t, e, "b")
	if opened == 0 || opened != closed {
		t.Fatalf("ESP made writable %d times, read-only again %d times", opened, closed)
	}
	e.Writable = func() (func() error, error) { return nil, errors.New("EROFS") }
	if err := e.SetState("b", Good); err == nil || !strings.Contains(err.Error(), "EROFS") {
		t.Fatalf("SetState with a failing remount: %v", err)
	}
	if ent, _ := e.Find("b"); !ent.InTrial() {
		t.Fatalf("a failed remount changed the entry: %+v", ent)
	}
}

func TestWithVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"title x\nversion 3\nlinux /k\n", "title x\nversion 7\nlinux /k\n"},
		{"title x\nlinux /k\n", "title x\nlinux /k\nversion 7\n"},
		{"title x", "title x\nversion 7\n"},
		{"version 1\nversion 2\n", "version 7\n"},
	}
	for _, tc := range tests {
		if got := string(withVersion([]byte(tc.in), 7)); got != tc.want {
			t.Errorf("withVersion(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBootedSlot(t *testing.T) {
	tests := []struct {
		cmdline string
		slot    string
		ok      bool
	}{
		{"root=PARTUUID=x ro rauc.slot=b quiet", "b", true},
		{"root=PARTUUID=x ro", "", false},
		{"rauc.slot= ro", "", false},
		{"rauc.slot=../a", "", false},
	}
	for _, tc := range tests {
		s, ok := BootedSlot(tc.cmdline)
		if s != tc.slot || ok != tc.ok {
			t.Errorf("BootedSlot(%q) = %q, %v; want %q, %v", tc.cmdline, s, ok, tc.slot, tc.ok)
		}
	}
}

func FuzzEntries(f *testing.F) {
	f.Add("timenode-a+1-2.conf", entryBody("a", 3))
	f.Add("timenode-b.conf", "version 99999999999999999999\n")
	f.Fuzz(func(t *testing.T, name, body string) {
		if strings.ContainsAny(name, "/\x00") || name == "" || name == "." || name == ".." {
			return
		}
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, EntriesDir), 0o755)
		if err := os.WriteFile(filepath.Join(dir, EntriesDir, name), []byte(body), 0o644); err != nil {
			return
		}
		e := ESP{Dir: dir}
		es, err := e.Entries()
		if err != nil {
			return
		}
		for _, ent := range es {
			if !ValidSlot(ent.Slot) || ent.Left < -1 || ent.Done < 0 || ent.Version < 0 {
				t.Fatalf("bad entry parsed from %q: %+v", name, ent)
			}
			// Every transition keeps one parseable entry per slot.
			for _, st := range []State{Bad, Good} {
				if err := e.SetState(ent.Slot, st); err != nil {
					t.Fatal(err)
				}
				if got, _ := e.State(ent.Slot); got != st {
					t.Fatalf("after SetState(%s) the state is %s", st, got)
				}
			}
		}
	})
}
