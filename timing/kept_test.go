package timing

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/timing/bound"
	"github.com/aunsorm/timenode/timing/internal/simclock"
	"github.com/aunsorm/timenode/timing/servo"
)

var keptNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func keptMemory() *servo.Memory {
	return &servo.Memory{Ratios: []float64{1e-3, 1e-2}, LogL: []float64{-4e4, -4.1e4}, Weight: 4096, Selected: 0,
		TempCo: 9.5, TempCoVar: 0.04}
}

func keptStatus() *Status {
	return &Status{Allan: measuredStability(), ServoMemory: keptMemory()}
}

func measuredStability() bound.Stability {
	var s bound.Stability
	for m := range bound.Octaves {
		s.N[m] = float64(19000 - 1000*m)
		s.Sum[m] = s.N[m] * 0.01 / float64(int(1)<<m)
	}
	return s
}

func TestParseKept(t *testing.T) {
	good := NewKept(keptStatus(), keptNow.Add(-time.Hour))
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
		{"saved seconds after a clock not yet disciplined", func(*Kept) {}, keptNow.Add(-time.Hour - 30*time.Second), ""},
		{"no time", func(k *Kept) { k.SavedAt = time.Time{} }, keptNow, "no saved_at"},
		{"unknown version", func(k *Kept) { k.Version = 2 }, keptNow, "version 2"},
		{"an octave short", func(k *Kept) { k.AllanSum = k.AllanSum[:bound.Octaves-1] }, keptNow, "11 sums and 12 counts"},
		{"negative sum", func(k *Kept) { k.AllanSum = append([]float64{-1}, k.AllanSum[1:]...) }, keptNow, "negative"},
		{"count past the cap", func(k *Kept) { k.AllanTerms = append([]float64{1e9}, k.AllanTerms[1:]...) }, keptNow, "more than the accumulator keeps"},
		{"no servo memory", func(k *Kept) { k.Servo = nil }, keptNow, ""},
		{"a broken servo memory", func(k *Kept) { k.Servo = &servo.Memory{Ratios: []float64{1}} }, keptNow, "servo: 1 bandwidths and 0 likelihoods"},
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
			got, err := ParseKept(b, tt.now)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("ParseKept: %v", err)
			case tt.want == "" && (got.Stability() != measuredStability() || !reflect.DeepEqual(got.Servo, k.Servo)):
				t.Errorf("ParseKept returned %+v, want what was kept", got)
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
	if err := SaveKept(path, NewKept(keptStatus(), keptNow)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	k, ok, err := LoadKept(path, keptNow.Add(time.Minute))
	if !ok || err != nil || k.Stability() != measuredStability() || !reflect.DeepEqual(k.Servo, keptMemory()) {
		t.Fatalf("LoadKept: ok %v, err %v, got %+v", ok, err, k)
	}
	var cfg Config
	k.Seed(&cfg)
	if cfg.Stability == nil || *cfg.Stability != measuredStability() || !reflect.DeepEqual(cfg.ServoMemory, keptMemory()) {
		t.Errorf("Seed set %+v and %+v, want what was kept", cfg.Stability, cfg.ServoMemory)
	}
	if err := os.WriteFile(path, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := LoadKept(path, keptNow); ok || err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("an empty record: ok %v, err %v; want an error naming the file", ok, err)
	}
}

// FuzzParseKept: what the parser accepts seeds an estimator and a
// discipline, and saves and parses to the same record.
func FuzzParseKept(f *testing.F) {
	b, _ := json.Marshal(NewKept(keptStatus(), keptNow.Add(-time.Minute)))
	f.Add(b)
	f.Add([]byte(`{"version":1,"saved_at":"2026-03-01T11:00:00Z","allan_sum_ppb2":[],"allan_terms":[]}`))
	f.Add([]byte(`{"version":1,"saved_at":"2026-03-01T11:00:00Z","allan_sum_ppb2":[1,0,0,0,0,0,0,0,0,0,0,0],"allan_terms":[1e400,0,0,0,0,0,0,0,0,0,0,0]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKept(b, keptNow)
		if err != nil {
			return
		}
		if err := bound.NewEstimator(bound.DefaultConfig()).SeedStability(k.Stability()); err != nil {
			t.Fatalf("accepted sums do not seed: %v", err)
		}
		cfg := DefaultConfig()
		k.Seed(&cfg)
		New(cfg, simclock.New(keptNow, 0), slog.New(slog.DiscardHandler)) // a servo memory of another bank is only logged
		again, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		if k2, err := ParseKept(again, keptNow); err != nil || !reflect.DeepEqual(k2, k) {
			t.Fatalf("saved again: %v, equal %v", err, reflect.DeepEqual(k2, k))
		}
	})
}
