// Package slots keeps the appliance's A/B root slots in systemd-boot's
// loader entries on the EFI system partition, with systemd-boot's own
// automatic boot assessment as the trial-boot counter.
//
// Each slot has one Type #1 entry, loader/entries/timenode-SLOT.conf. An
// entry in trial carries a boot counter in its name,
// timenode-SLOT+LEFT[-DONE].conf: before booting it, systemd-boot renames
// it with one try fewer left and one more done; an entry with no tries
// left is "bad" and sorted after every other entry. The loader's default
// is the pattern "timenode-*", which selects the first entry in sorted
// order, so a slot whose trial ran out is passed over and the other slot
// boots: the rollback needs nothing from the failed system. Among good
// entries the higher "version" line sorts first; SetPrimary gives the
// chosen slot a version above every other entry's.
//
// RAUC drives these through its custom bootloader backend (get-primary,
// set-primary, get-state, set-state); the trial gate commits a slot with
// SetState(slot, Good) once the node serves.
package slots

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Prefix starts every appliance loader entry's file name.
const Prefix = "timenode-"

// EntriesDir is where Type #1 entries live on the ESP.
const EntriesDir = "loader/entries"

// DefaultTries is the number of trial boots a newly installed slot gets
// before systemd-boot passes it over.
const DefaultTries = 2

// State is RAUC's view of a slot: good or bad.
type State string

// The states.
const (
	Good State = "good"
	Bad  State = "bad"
)

// Entry is one slot's loader entry.
type Entry struct {
	Slot string // bootname: a or b
	// Left and Done are the boot counter; Left is -1 for an entry
	// without one (committed).
	Left, Done int
	Version    int    // the "version" line: higher sorts first
	Name       string // file name in EntriesDir
	Body       []byte // the file's content
}

// InTrial says the entry still counts boots: installed, not committed.
func (e Entry) InTrial() bool { return e.Left > 0 }

// Bad says systemd-boot will pass the entry over: its tries ran out
// (or RAUC marked it bad while its slot was written).
func (e Entry) Bad() bool { return e.Left == 0 }

// entryName matches timenode-SLOT[+LEFT[-DONE]].conf.
var entryName = regexp.MustCompile(`^` + regexp.QuoteMeta(Prefix) + `([a-z0-9]+)(?:\+([0-9]+)(?:-([0-9]+))?)?\.conf$`)

// ValidSlot reports whether s can name a slot (RAUC's bootname).
func ValidSlot(s string) bool {
	return s != "" && len(s) <= 16 && regexp.MustCompile(`^[a-z0-9]+$`).MatchString(s)
}

// ESP is an EFI system partition mounted at Dir.
type ESP struct {
	Dir string
	// Writable, if set, is called before the first change and its
	// result after the last (the appliance mounts the ESP read-only and
	// remounts it around a change).
	Writable func() (done func() error, err error)
}

// Entries reads every appliance entry, sorted as systemd-boot sorts them.
// Two entries for one slot are an error: the state would be ambiguous.
func (e ESP) Entries() ([]Entry, error) {
	dir := filepath.Join(e.Dir, EntriesDir)
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("slots: %w", err)
	}
	var out []Entry
	seen := map[string]string{}
	for _, de := range des {
		m := entryName.FindStringSubmatch(de.Name())
		if m == nil || !de.Type().IsRegular() {
			continue
		}
		ent := Entry{Slot: m[1], Left: -1, Name: de.Name()}
		if prev, dup := seen[ent.Slot]; dup {
			return nil, fmt.Errorf("slots: %s and %s both describe slot %s in %s", prev, de.Name(), ent.Slot, dir)
		}
		seen[ent.Slot] = de.Name()
		if m[2] != "" {
			ent.Left, _ = strconv.Atoi(m[2])
			if m[3] != "" {
				ent.Done, _ = strconv.Atoi(m[3])
			}
		}
		if ent.Body, err = os.ReadFile(filepath.Join(dir, de.Name())); err != nil {
			return nil, fmt.Errorf("slots: %w", err)
		}
		if ent.Version, err = versionOf(ent.Body); err != nil {
			return nil, fmt.Errorf("slots: %s: %w", filepath.Join(dir, de.Name()), err)
		}
		out = append(out, ent)
	}
	sortEntries(out)
	return out, nil
}

// sortEntries orders as systemd-boot does for entries that share a
// sort-key: bad ones last, then the highest version first, then by id.
func sortEntries(es []Entry) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.Bad() != b.Bad() {
			return !a.Bad()
		}
		if a.Version != b.Version {
			return a.Version > b.Version
		}
		return a.Slot > b.Slot
	})
}

// versionOf reads the entry's "version" line (absent: 0).
func versionOf(body []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "version" {
			v, err := strconv.Atoi(f[1])
			if err != nil || v < 0 {
				return 0, fmt.Errorf("version %q is not a generation number", f[1])
			}
			return v, nil
		}
	}
	return 0, sc.Err()
}

// withVersion returns body with its version line set to v.
func withVersion(body []byte, v int) []byte {
	var out bytes.Buffer
	done := false
	for _, line := range strings.SplitAfter(string(body), "\n") {
		if f := strings.Fields(line); len(f) >= 1 && f[0] == "version" {
			if !done {
				fmt.Fprintf(&out, "version %d\n", v)
				done = true
			}
			continue
		}
		out.WriteString(line)
	}
	if !done {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
		fmt.Fprintf(&out, "version %d\n", v)
	}
	return out.Bytes()
}

// ErrNoEntry is returned for a slot without a loader entry.
var ErrNoEntry = errors.New("no loader entry")

// Find returns the slot's entry.
func (e ESP) Find(slot string) (Entry, error) {
	es, err := e.Entries()
	if err != nil {
		return Entry{}, err
	}
	for _, ent := range es {
		if ent.Slot == slot {
			return ent, nil
		}
	}
	return Entry{}, fmt.Errorf("slots: slot %s: %w in %s", slot, ErrNoEntry, filepath.Join(e.Dir, EntriesDir))
}

// Primary returns the slot systemd-boot boots next: the first entry in
// its order.
func (e ESP) Primary() (string, error) {
	es, err := e.Entries()
	if err != nil {
		return "", err
	}
	if len(es) == 0 {
		return "", fmt.Errorf("slots: %w in %s", ErrNoEntry, filepath.Join(e.Dir, EntriesDir))
	}
	return es[0].Slot, nil
}

// State returns bad for a slot systemd-boot passes over or that has no
// entry, else good.
func (e ESP) State(slot string) (State, error) {
	ent, err := e.Find(slot)
	if errors.Is(err, ErrNoEntry) {
		return Bad, nil
	}
	if err != nil {
		return "", err
	}
	if ent.Bad() {
		return Bad, nil
	}
	return Good, nil
}

// SetPrimary makes slot the next boot, on trial: its version goes above
// every other entry's and it gets tries boots to be committed.
func (e ESP) SetPrimary(slot string, tries int) error {
	if tries < 1 {
		return fmt.Errorf("slots: %d tries: a trial needs at least one boot", tries)
	}
	es, err := e.Entries()
	if err != nil {
		return err
	}
	var target *Entry
	others := 0 // the highest version of every other entry
	for i := range es {
		if es[i].Slot == slot {
			target = &es[i]
		} else {
			others = max(others, es[i].Version)
		}
	}
	if target == nil {
		return fmt.Errorf("slots: slot %s: %w in %s", slot, ErrNoEntry, filepath.Join(e.Dir, EntriesDir))
	}
	v := max(target.Version, others+1)
	return e.rewrite(*target, fmt.Sprintf("%s%s+%d.conf", Prefix, slot, tries), withVersion(target.Body, v))
}

// SetState commits a slot (good: the counter is dropped, the entry stays
// where its version puts it) or marks it bad (no tries left, so
// systemd-boot passes it over).
func (e ESP) SetState(slot string, st State) error {
	ent, err := e.Find(slot)
	if err != nil {
		if st == Bad && errors.Is(err, ErrNoEntry) {
			return nil // nothing boots it anyway
		}
		return err
	}
	switch st {
	case Good:
		if ent.Left < 0 {
			return nil
		}
		return e.rewrite(ent, Prefix+slot+".conf", ent.Body)
	case Bad:
		if ent.Bad() {
			return nil
		}
		return e.rewrite(ent, fmt.Sprintf("%s%s+0-%d.conf", Prefix, slot, ent.Done), ent.Body)
	default:
		return fmt.Errorf("slots: state %q: want good or bad", st)
	}
}

// Install writes slot's entry (bad, so nothing boots it until
// SetPrimary), replacing any entry the slot had.
func (e ESP) Install(slot string, body []byte) error {
	if !ValidSlot(slot) {
		return fmt.Errorf("slots: %q is not a slot name", slot)
	}
	old, err := e.Find(slot)
	if err != nil && !errors.Is(err, ErrNoEntry) {
		return err
	}
	if err != nil {
		old = Entry{}
	}
	return e.rewrite(old, fmt.Sprintf("%s%s+0.conf", Prefix, slot), withVersion(body, 0))
}

// rewrite replaces old (if named) with a file called name holding body:
// the new file is written and synced under a temporary name, renamed,
// then the old name removed; a crash leaves either entry, or both, which
// Entries refuses loudly rather than guessing.
func (e ESP) rewrite(old Entry, name string, body []byte) (err error) {
	if e.Writable != nil {
		done, werr := e.Writable()
		if werr != nil {
			return fmt.Errorf("slots: make %s writable: %w", e.Dir, werr)
		}
		defer func() {
			if derr := done(); derr != nil && err == nil {
				err = fmt.Errorf("slots: %w", derr)
			}
		}()
	}
	dir := filepath.Join(e.Dir, EntriesDir)
	tmp := filepath.Join(dir, ".tmp-"+name)
	if err := writeSync(tmp, body); err != nil {
		return fmt.Errorf("slots: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("slots: %w", err)
	}
	if old.Name != "" && old.Name != name {
		if err := os.Remove(filepath.Join(dir, old.Name)); err != nil {
			return fmt.Errorf("slots: %w", err)
		}
	}
	return syncDir(dir)
}

func writeSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("slots: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("slots: sync %s: %w", dir, err)
	}
	return nil
}

// BootedSlot returns the slot named by rauc.slot= on a kernel command line.
func BootedSlot(cmdline string) (string, bool) {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "rauc.slot="); ok && ValidSlot(v) {
			return v, true
		}
	}
	return "", false
}
