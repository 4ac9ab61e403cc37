package integrity

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMemoryRestoresDistrustForAFullHoldOff drives a policy untrusted,
// saves it, restores it into a new policy an hour and a half later (longer
// than the hold-off) and checks that the new one is untrusted, with the
// same evidence, and stays so for the whole hold-off counted from the
// restart before it steps down to suspect.
func TestMemoryRestoresDistrustForAFullHoldOff(t *testing.T) {
	t0 := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	cfg := PolicyConfig{HoldOff: time.Hour, SuspectClear: 10 * time.Minute}
	p := NewPolicy(cfg, t0)
	p.Observe(Evidence{At: t0, Detector: DetectorPosition, Reason: "position_jump", Level: LevelUntrusted, Values: map[string]float64{"distance_m": 2000}})
	if _, ok := p.Evaluate(t0); !ok {
		t.Fatal("no transition on untrusted evidence")
	}
	path := filepath.Join(t.TempDir(), "integrity.json")
	m := p.Memory(t0)
	m.Antenna = &Fix{LatDeg: 41.0151, LonDeg: 28.9795, AltM: 40, Valid: true}
	m.PPSFit = &PowerLaw{R: 9e6, Qwf: 0.09, Qrw: 0.011}
	if err := SaveMemory(path, m); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("memory file mode %v, %v; want 0600", fi.Mode(), err)
	}
	got, ok, err := LoadMemory(path)
	if err != nil || !ok {
		t.Fatalf("LoadMemory: %v, %v", ok, err)
	}
	if got.Antenna == nil || *got.Antenna != *m.Antenna || got.PPSFit == nil || *got.PPSFit != *m.PPSFit ||
		got.Why != "evidence" || len(got.Evidence) != 1 || got.Evidence[0].Values["distance_m"] != 2000 {
		t.Fatalf("memory read back as %+v", got)
	}

	restart := t0.Add(90 * time.Minute)
	q := NewPolicy(cfg, restart)
	st, err := q.Restore(got, restart)
	if err != nil || st != StateUntrusted || q.FollowGNSS() {
		t.Fatalf("restored %v, %v; following GNSS %v", st, err, q.FollowGNSS())
	}
	if s, since := q.State(); s != StateUntrusted || !since.Equal(t0) {
		t.Fatalf("state %v since %v, want untrusted since %v", s, since, t0)
	}
	if tr, ok := q.Evaluate(restart.Add(59 * time.Minute)); ok {
		t.Fatalf("left untrusted %v after the restart, before the hold-off: %+v", 59*time.Minute, tr)
	}
	tr, ok := q.Evaluate(restart.Add(time.Hour))
	if !ok || tr.To != StateSuspect || len(tr.Evidence) != 1 || tr.Evidence[0].Reason != "position_jump" {
		t.Fatalf("after the hold-off: %+v %v, want suspect with the remembered evidence", tr, ok)
	}
	// Trusted again, the memory says so and carries no evidence.
	q.Evaluate(restart.Add(time.Hour + 10*time.Minute))
	if m := q.Memory(restart); m.State != "trusted" || len(m.Evidence) != 0 || m.Why != "" {
		t.Fatalf("trusted memory %+v", m)
	}
}

// heldJSON is a PPS held line as a stopping daemon writes it.
const heldJSON = `{"line":{"sec":-30,"x_ns":12.5,"y_ns_per_s":0.25,"tau_s":512,"why":"phase_step"},"slope_ns_per_s":3000,"clock_id":"boot-1","at":"2031-06-01T00:00:00Z","free_ns":1.5e12,"freq_ppb":-3000}`

func TestLoadMemory(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := LoadMemory(filepath.Join(dir, "absent.json")); ok || err != nil {
		t.Fatalf("missing file: ok %v err %v, want no memory and no error", ok, err)
	}
	tests := []struct{ name, body, want string }{
		{"not JSON", "{", "unexpected end"},
		{"other version", `{"version":2,"state":"trusted"}`, "version 2"},
		{"unknown state", `{"version":1,"state":"fine"}`, `unknown integrity state "fine"`},
		{"bad antenna", `{"version":1,"state":"trusted","antenna":{"LatDeg":95,"LonDeg":0,"AltM":0,"Valid":true}}`, "not a valid fix"},
		{"invalid antenna", `{"version":1,"state":"trusted","antenna":{"LatDeg":41,"LonDeg":29,"AltM":0,"Valid":false}}`, "not a valid fix"},
		{"negative fit", `{"version":1,"state":"trusted","pps_fit":{"r_ns2":-1,"qwf_ns2_per_s":0,"qrw_ppb2_per_s":0}}`, "pps_fit"},
		{"unnamed witness", `{"version":1,"state":"trusted","witness_history":[{"w":"","at":"2031-06-01T00:00:00Z","offset_ns":5,"uncertainty_ns":9}]}`, "witness_history[0]"},
		{"witness without a time", `{"version":1,"state":"trusted","witness_history":[{"w":"rt","offset_ns":5,"uncertainty_ns":9}]}`, "witness_history[0]"},
		{"negative uncertainty", `{"version":1,"state":"trusted","witness_history":[{"w":"rt","at":"2031-06-01T00:00:00Z","offset_ns":5,"uncertainty_ns":-1}]}`, "witness_history[0]"},
		{"held line of no alarm", `{"version":1,"state":"untrusted","pps_held":` + strings.Replace(heldJSON, "phase_step", "pps_missing", 1) + `}`, "pps_held: held line for"},
		{"held line without its clock", `{"version":1,"state":"untrusted","pps_held":` + strings.Replace(heldJSON, `"boot-1"`, `""`, 1) + `}`, "pps_held: clock"},
		{"held line off any oscillator", `{"version":1,"state":"untrusted","pps_held":` + strings.Replace(heldJSON, "3000,", "3e7,", 1) + `}`, "pps_held: slope"},
		{"too long a history", `{"version":1,"state":"trusted","witness_history":[` +
			strings.Repeat(`{"w":"rt","at":"2031-06-01T00:00:00Z","offset_ns":5,"uncertainty_ns":9},`, maxWitnessRecords) +
			`{"w":"rt","at":"2031-06-01T00:00:00Z","offset_ns":5,"uncertainty_ns":9}]}`, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, ok, err := LoadMemory(path)
			if ok || err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("ok %v err %v, want an error naming %s and saying %q", ok, err, path, tt.want)
			}
		})
	}
}

func TestRestoreRefusesAnUnknownState(t *testing.T) {
	now := time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)
	p := NewPolicy(PolicyConfig{}, now)
	if _, err := p.Restore(Memory{Version: MemoryVersion, State: "sure"}, now); err == nil {
		t.Fatal("restored an unknown state")
	}
	if s, _ := p.State(); s != StateTrusted {
		t.Fatalf("state %v after a refused restore", s)
	}
}

// TestMemoryKeepsTheWitnessHistory: the history survives a save and a
// load, and what is restored is what is still history at the restart, in
// time order.
func TestMemoryKeepsTheWitnessHistory(t *testing.T) {
	now := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	ms := []Measurement{
		{Witness: "nts", At: now.Add(-5 * time.Hour), Offset: 1, Uncertainty: 2}, // too old by then
		{Witness: "rt", At: now.Add(-time.Hour), Offset: -3 * time.Microsecond, Uncertainty: 300 * time.Microsecond},
		{Witness: "nts", At: now.Add(-2 * time.Hour), Offset: 4 * time.Microsecond, Uncertainty: 500 * time.Microsecond},
		{Witness: "rt", At: now.Add(time.Minute), Offset: 5, Uncertainty: 6}, // after the restart's clock
	}
	path := filepath.Join(t.TempDir(), "integrity.json")
	if err := SaveMemory(path, Memory{Version: MemoryVersion, State: "trusted", WitnessHistory: WitnessRecords(ms)}); err != nil {
		t.Fatal(err)
	}
	m, ok, err := LoadMemory(path)
	if err != nil || !ok {
		t.Fatalf("load: %v %v", ok, err)
	}
	// More than LoadMemory takes is cut to the latest, never refused.
	long := make([]WitnessRecord, maxWitnessRecords+5)
	for i := range long {
		long[i] = WitnessRecord{Witness: "rt", At: now.Add(time.Duration(i) * time.Second), UncertaintyNs: 1}
	}
	longPath := filepath.Join(t.TempDir(), "long.json")
	if err := SaveMemory(longPath, Memory{Version: MemoryVersion, State: "trusted", WitnessHistory: long}); err != nil {
		t.Fatal(err)
	}
	if lm, ok, err := LoadMemory(longPath); err != nil || !ok || len(lm.WitnessHistory) != maxWitnessRecords || !lm.WitnessHistory[0].At.Equal(long[5].At) {
		t.Fatalf("a long history saved and loaded: %d records (%v %v), want the latest %d", len(lm.WitnessHistory), ok, err, maxWitnessRecords)
	}
	got := m.RestoreWitnessHistory(now)
	want := []Measurement{ms[2], ms[1]}
	if len(got) != len(want) {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Witness != want[i].Witness || !got[i].At.Equal(want[i].At) || got[i].Offset != want[i].Offset || got[i].Uncertainty != want[i].Uncertainty {
			t.Errorf("restored[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// FuzzLoadMemory: whatever the file and the held line beside it hold,
// LoadMemory returns a memory or an error, never panics; a memory it
// accepts restores into a policy and a witness history, and saved again
// loads again.
func FuzzLoadMemory(f *testing.F) {
	f.Add(`{"version":1,"state":"untrusted","since":"2031-06-01T00:00:00Z","residual_ns":5000,"evidence":[{"At":"2031-06-01T00:00:00Z","Detector":"pps","Reason":"phase_step","Level":3,"Values":{"held_error_ns":4000}}]}`, "")
	f.Add(`{"version":1,"state":"suspect","drift_ns_per_s":2.5,"drift_from":"2031-06-01T00:00:00Z","pps_fit":{"r_ns2":1,"qwf_ns2_per_s":0.1,"qrw_ppb2_per_s":0}}`, "")
	f.Add(`{"version":1,"state":"trusted","witness_history":[{"w":"rt","at":"2031-06-01T00:00:00Z","offset_ns":5,"uncertainty_ns":9}]}`, "")
	f.Add(`{"version":1,"state":"trusted","antenna":{"LatDeg":41,"LonDeg":29,"AltM":40,"Valid":true}}`, "")
	f.Add(`{"version":1,"state":"untrusted","pps_held":`+heldJSON+`}`, "")
	f.Add(`{"version":1,"state":"untrusted"}`, heldJSON)
	f.Add(`{"version":1,"state":"untrusted","pps_held":`+heldJSON+`}`, `{"line":{}}`)
	dir := f.TempDir()
	now := time.Date(2031, 6, 1, 1, 0, 0, 0, time.UTC)
	// held is the file beside the memory file (HeldPath); empty: none.
	f.Fuzz(func(t *testing.T, body, held string) {
		path := filepath.Join(dir, "m.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(HeldPath(path))
		if held != "" {
			if err := os.WriteFile(HeldPath(path), []byte(held), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		m, ok, err := LoadMemory(path)
		if err != nil || !ok {
			return
		}
		if _, err := NewPolicy(PolicyConfig{}, now).Restore(m, now); err != nil {
			t.Fatalf("accepted memory does not restore: %v", err)
		}
		if r := m.PPSHeld; r != nil {
			if err := NewPPSDetector(PPSConfig{Model: tcxo}).Hold(r.Line); err != nil {
				t.Fatalf("accepted held line %+v is not held: %v", r.Line, err)
			}
		}
		hist := m.RestoreWitnessHistory(now)
		if len(hist) > len(m.WitnessHistory) {
			t.Fatalf("restored %d of %d measurements", len(hist), len(m.WitnessHistory))
		}
		if err := SaveMemory(path, m); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := LoadMemory(path); err != nil || !ok {
			t.Fatalf("saved memory does not load again: %v %v", ok, err)
		}
	})
}

// TestMemoryKeepsTheHeldLineBesideIt: the held line lives in its own file
// beside the memory file. SaveHeld rewrites that file alone, SaveMemory
// keeps it in step with the Memory, LoadMemory reads it (over a line an
// older daemon kept inside the memory file), refuses a broken one by its
// path, and ignores it when the memory file itself was removed.
func TestMemoryKeepsTheHeldLineBesideIt(t *testing.T) {
	var held PPSHeldRecord
	if err := json.Unmarshal([]byte(heldJSON), &held); err != nil {
		t.Fatal(err)
	}
	later := held
	later.At = held.At.Add(time.Minute)
	dir := t.TempDir()
	path := filepath.Join(dir, "integrity.json")
	load := func() *PPSHeldRecord {
		t.Helper()
		m, ok, err := LoadMemory(path)
		if err != nil || !ok {
			t.Fatalf("LoadMemory: %v, %v", ok, err)
		}
		return m.PPSHeld
	}
	if err := SaveMemory(path, Memory{Version: MemoryVersion, State: "untrusted", PPSHeld: &held}); err != nil {
		t.Fatal(err)
	}
	main, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(main), "pps_held") {
		t.Errorf("memory file holds the line too:\n%s", main)
	}
	if fi, err := os.Stat(HeldPath(path)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("held line file %v, %v; want mode 0600", fi, err)
	}
	if r := load(); r == nil || !r.At.Equal(held.At) {
		t.Fatalf("line read back %+v, want the one saved", r)
	}

	if err := SaveHeld(path, &later); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(main) {
		t.Error("SaveHeld rewrote the memory file")
	}
	if r := load(); r == nil || !r.At.Equal(later.At) {
		t.Fatalf("line read back %+v, want the one SaveHeld wrote", r)
	}

	// An older daemon's file keeps the line inside; the file beside it,
	// when there is one, is newer.
	old := strings.Replace(string(main), `"version"`, `"pps_held": `+heldJSON+`, "version"`, 1)
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := load(); r == nil || !r.At.Equal(later.At) {
		t.Fatalf("line read back %+v, want the one beside the file", r)
	}
	if err := SaveHeld(path, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(HeldPath(path)); !os.IsNotExist(err) {
		t.Fatalf("held line file after SaveHeld(nil): %v, want it removed", err)
	}
	if r := load(); r == nil || !r.At.Equal(held.At) {
		t.Fatalf("line read back %+v, want the one inside the older file", r)
	}
	if err := SaveHeld(path, nil); err != nil {
		t.Errorf("removing a line that is not there: %v", err)
	}

	// SaveMemory without a line removes the one beside it.
	if err := SaveHeld(path, &later); err != nil {
		t.Fatal(err)
	}
	if err := SaveMemory(path, Memory{Version: MemoryVersion, State: "trusted"}); err != nil {
		t.Fatal(err)
	}
	if r := load(); r != nil {
		t.Fatalf("line %+v after a memory saved without one", r)
	}

	// A broken line is refused, by its own path.
	if err := os.WriteFile(HeldPath(path), []byte(strings.Replace(heldJSON, `"boot-1"`, `""`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := LoadMemory(path); ok || err == nil || !strings.Contains(err.Error(), HeldPath(path)) {
		t.Fatalf("broken line: ok %v err %v, want an error naming %s", ok, err, HeldPath(path))
	}

	// Removing the memory file resets the check: what lies beside it
	// is not a memory.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if m, ok, err := LoadMemory(path); ok || err != nil || m.PPSHeld != nil {
		t.Fatalf("no memory file: %+v, ok %v, err %v; want no memory", m, ok, err)
	}
}
