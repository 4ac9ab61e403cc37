package integrity

import (
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
