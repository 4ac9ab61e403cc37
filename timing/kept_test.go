package timing

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/timing/bound"
)

var keptNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func measuredStability() bound.Stability {
	var s bound.Stability
	for m := range bound.Octaves {
		s.N[m] = float64(19000 - 1000*m)
		s.Sum[m] = s.N[m] * 0.01 / float64(int(1)<<m)
	}
	return s
}

func TestParseKept(t *testing.T) {
	good := NewKept(measuredStability(), keptNow.Add(-time.Hour))
	tests := []struct {
		name string
		edit func(*Kept)
		now  time.Time
		want string // "" accepted
	}{
		{"an hour old", func(*Kept) {}, keptNow, ""},
		{"a day old", func(k *Kept) { k.SavedAt = keptNow.Add(-MaxKeptAge) }, keptNow, ""},
		{"older than a day", func(k *Kept) { k.SavedAt = keptNow.Add(-MaxKeptAge - time.Minute) }, keptNow, "more than 24h0m0s"},
		{"saved after the clock's now", func(*Kept) {}, keptNow.Add(-2 * time.Hour), "its age is unknown"},
		{"no time", func(k *Kept) { k.SavedAt = time.Time{} }, keptNow, "no saved_at"},
		{"unknown version", func(k *Kept) { k.Version = 2 }, keptNow, "version 2"},
		{"an octave short", func(k *Kept) { k.AllanSum = k.AllanSum[:bound.Octaves-1] }, keptNow, "11 sums and 12 counts"},
		{"negative sum", func(k *Kept) { k.AllanSum = append([]float64{-1}, k.AllanSum[1:]...) }, keptNow, "negative"},
		{"count past the cap", func(k *Kept) { k.AllanTerms = append([]float64{1e9}, k.AllanTerms[1:]...) }, keptNow, "more than the accumulator keeps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := good
			k.AllanSum, k.AllanTerms = append([]float64(nil), k.AllanSum...), append([]float64(nil), k.AllanTerms...)
			tt.edit(&k)
			b, err := json.Marshal(k)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseKept(b, tt.now)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("ParseKept: %v", err)
			case tt.want == "" && s != measuredStability():
				t.Errorf("ParseKept returned %+v, want what was kept", s)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ParseKept: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := ParseKept([]byte(`{"version":1,`), keptNow); err == nil {
		t.Error("a truncated file was accepted")
	}
}

func TestSaveAndLoadKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stability.json")
	if _, ok, err := LoadKept(path, keptNow); ok || err != nil {
		t.Fatalf("no file: ok %v, err %v; want neither", ok, err)
	}
	if err := SaveKept(path, measuredStability(), keptNow); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	s, ok, err := LoadKept(path, keptNow.Add(time.Minute))
	if !ok || err != nil || s != measuredStability() {
		t.Fatalf("LoadKept: ok %v, err %v, equal %v", ok, err, s == measuredStability())
	}
	if err := os.WriteFile(path, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := LoadKept(path, keptNow); ok || err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("an empty record: ok %v, err %v; want an error naming the file", ok, err)
	}
}

// FuzzParseKept: what the parser accepts seeds an estimator, and saves
// and parses to the same sums.
func FuzzParseKept(f *testing.F) {
	b, _ := json.Marshal(NewKept(measuredStability(), keptNow.Add(-time.Minute)))
	f.Add(b)
	f.Add([]byte(`{"version":1,"saved_at":"2026-03-01T11:00:00Z","allan_sum_ppb2":[],"allan_terms":[]}`))
	f.Add([]byte(`{"version":1,"saved_at":"2026-03-01T11:00:00Z","allan_sum_ppb2":[1,0,0,0,0,0,0,0,0,0,0,0],"allan_terms":[1e400,0,0,0,0,0,0,0,0,0,0,0]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseKept(b, keptNow)
		if err != nil {
			return
		}
		if err := bound.NewEstimator(bound.DefaultConfig()).SeedStability(s); err != nil {
			t.Fatalf("accepted sums do not seed: %v", err)
		}
		again, err := json.Marshal(NewKept(s, keptNow))
		if err != nil {
			t.Fatal(err)
		}
		if s2, err := ParseKept(again, keptNow); err != nil || s2 != s {
			t.Fatalf("saved again: %v, equal %v", err, s2 == s)
		}
	})
}
