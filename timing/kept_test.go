package timing

import (
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
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
		{"a kept frequency", func(k *Kept) { k.Servo = keptFreqMemory(k.Servo) }, keptNow, ""},
		{"a frequency past the servo's range", func(k *Kept) { k.Servo = keptFreqMemory(k.Servo); k.Servo.FreqPPB = 6e5 }, keptNow, "frequency 600000 ppb"},
		{"a negative frequency variance", func(k *Kept) { k.Servo = keptFreqMemory(k.Servo); k.Servo.FreqVar = -1 }, keptNow, "frequency variance -1"},
		{"a frequency history", func(k *Kept) { k.FrequencyHistory = keptHistory() }, keptNow, ""},
		{"a frequency history newest first", func(k *Kept) { k.FrequencyHistory = keptHistory(); slices.Reverse(k.FrequencyHistory) }, keptNow, "frequency block 1 overlaps"},
		{"a frequency block of 10 s", func(k *Kept) { k.FrequencyHistory = keptHistory(); k.FrequencyHistory[0].LengthS = 10 }, keptNow, "frequency block 0: length 10 s"},
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
			case tt.want == "" && (got.Stability() != measuredStability() || !reflect.DeepEqual(got.Servo, k.Servo) ||
				!reflect.DeepEqual(got.FrequencyHistory, k.FrequencyHistory)):
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

// keptHistory is a frequency history of three blocks, oldest first.
func keptHistory() []bound.FrequencyBlock {
	return []bound.FrequencyBlock{{AgeS: 2050, LengthS: 1024, FreqPPB: 2150.5}, {AgeS: 1025, LengthS: 1024, FreqPPB: 2152},
		{AgeS: 0, LengthS: 1024, FreqPPB: 2154.25}}
}

// keptFreqMemory returns a copy of m with a kept frequency.
func keptFreqMemory(m *servo.Memory) *servo.Memory {
	c := *m
	c.FreqPPB, c.FreqVar, c.FreqWalk = 2150, 0.25, 1e-4
	return &c
}

// bankMemory is a memory the default Kalman bank accepts, with a kept
// frequency.
func bankMemory() *servo.Memory {
	cfg := servo.DefaultKalmanConfig()
	m := keptFreqMemory(keptMemory())
	m.Ratios, m.LogL = nil, nil
	for x := cfg.MinLogRatio; x <= cfg.MaxLogRatio+1e-9; x += 0.5 {
		m.Ratios, m.LogL = append(m.Ratios, math.Pow(10, x)), append(m.LogL, -4e4)
	}
	return m
}

// anonymousClock hides a clock's identity (clock.Identified).
type anonymousClock struct{ clock.Steerable }

// TestKeptFrequency: the kept record carries the frequency with its
// clock; the discipline offers it to the servo only on the same clock, its
// variance grown by the random walk over the gap, and says why not
// otherwise.
func TestKeptFrequency(t *testing.T) {
	same := simclock.New(keptNow, 0)
	id, err := same.ClockID()
	if err != nil {
		t.Fatal(err)
	}
	st := &Status{Allan: measuredStability(), ServoMemory: bankMemory(), ClockID: id}
	var cfg Config
	NewKept(st, keptNow.Add(-time.Hour)).Seed(&cfg)
	want := KeptFrequency{ClockID: id, SavedAt: keptNow.Add(-time.Hour), FreqPPB: 2150, FreqVar: 0.25, FreqWalk: 1e-4}
	if cfg.KeptFrequency == nil || *cfg.KeptFrequency != want {
		t.Fatalf("Seed set the kept frequency %+v, want %+v", cfg.KeptFrequency, want)
	}
	for name, edit := range map[string]func(*Status){
		"no clock ID":  func(s *Status) { s.ClockID = "" },
		"no frequency": func(s *Status) { m := *s.ServoMemory; m.FreqVar = 0; s.ServoMemory = &m },
		"no memory":    func(s *Status) { s.ServoMemory = nil },
	} {
		s2 := *st
		edit(&s2)
		var c Config
		NewKept(&s2, keptNow).Seed(&c)
		if c.KeptFrequency != nil {
			t.Errorf("%s: Seed set a kept frequency %+v", name, c.KeptFrequency)
		}
	}

	tests := []struct {
		name    string
		clk     clock.Steerable
		saved   time.Time
		memory  *servo.Memory
		want    string // in the log
		offered bool
	}{
		{"the same clock, an hour later", same, keptNow.Add(-time.Hour), bankMemory(),
			"sigma_ppb=0.7", true}, // √(0.25 + 1e-4·3600) = 0.78
		{"another clock", simclock.New(keptNow, 0), keptNow.Add(-time.Hour), bankMemory(), "measured on another clock or boot (" + id + ")", false},
		{"a clock without identity", anonymousClock{simclock.New(keptNow, 0)}, keptNow.Add(-time.Hour), bankMemory(), "cannot say whether it is the one", false},
		{"saved after the clock's reading", same, keptNow.Add(2 * time.Minute), bankMemory(), "the gap is unknown", false},
		{"a memory of another bank", same, keptNow.Add(-time.Hour), keptFreqMemory(keptMemory()), "kept servo memory ignored", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			st := &Status{Allan: measuredStability(), ServoMemory: tt.memory, ClockID: id}
			NewKept(st, tt.saved).Seed(&c)
			var logs strings.Builder
			New(c, tt.clk, slog.New(slog.NewTextHandler(&logs, nil)))
			out := logs.String()
			if !strings.Contains(out, tt.want) {
				t.Errorf("log lacks %q:\n%s", tt.want, out)
			}
			if got := strings.Contains(out, "kept frequency offered to the servo"); got != tt.offered {
				t.Errorf("offered %v, want %v:\n%s", got, tt.offered, out)
			}
		})
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
	withHistory := NewKept(keptStatus(), keptNow.Add(-time.Minute))
	withHistory.FrequencyHistory = keptHistory()
	b, _ = json.Marshal(withHistory)
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
		if err := bound.NewEstimator(bound.DefaultConfig()).SeedFrequencyHistory(k.FrequencyHistory); err != nil {
			t.Fatalf("an accepted frequency history does not seed: %v", err)
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

// TestLogPriorVerdict: each verdict on a kept frequency has its own line
// in the journal, with the values it was judged on.
func TestLogPriorVerdict(t *testing.T) {
	tests := []struct {
		v     servo.PriorVerdict
		want  []string
		level string
	}{
		{servo.PriorVerdict{Used: true, KeptPPB: 2150, KeptSigma: 2, FilterPPB: 2151, FilterSigma: 9},
			[]string{"taken in", "kept_ppb=2150", "measured_ppb=2151", "measured_sigma_ppb=9"}, "INFO"},
		{servo.PriorVerdict{KeptPPB: 2150, KeptSigma: 2, FilterPPB: 3150, FilterSigma: 9},
			[]string{"disagrees", "dropped", "kept_ppb=2150", "measured_ppb=3150"}, "WARN"},
		{servo.PriorVerdict{Withdrawn: true, KeptPPB: 2150, KeptSigma: 2},
			[]string{"withdrawn before the servo could judge it", "kept_ppb=2150", "kept_sigma_ppb=2"}, "INFO"},
	}
	for _, tt := range tests {
		var logs strings.Builder
		logPriorVerdict(slog.New(slog.NewTextHandler(&logs, nil)), tt.v)
		out := logs.String()
		for _, w := range append(tt.want, "level="+tt.level) {
			if !strings.Contains(out, w) {
				t.Errorf("%+v: log lacks %q:\n%s", tt.v, w, out)
			}
		}
		if tt.v.Withdrawn && strings.Contains(out, "measured_ppb") {
			t.Errorf("a withdrawn verdict logs a measurement it never made:\n%s", out)
		}
	}
}
