package timing

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/timing/bound"
)

// KeptVersion is the format version of the kept stability file.
const KeptVersion = 1

// MaxKeptAge is how old kept stability may be and still seed a restarted
// discipline. The sums describe an oscillator in its place: an update or a
// reconfiguration restarts within minutes, while a node that was off for
// longer may have been moved, or its board replaced, and measures afresh.
const MaxKeptAge = 24 * time.Hour

// Kept is what the daemon keeps of the discipline across restarts, as
// JSON in its state directory: the oscillator's stability as measured
// (Status.Allan), per octave τ = 2^m s.
type Kept struct {
	Version int       `json:"version"`
	SavedAt time.Time `json:"saved_at"`
	// AllanSum (ppb²) and AllanTerms are bound.Stability's Sum and N.
	AllanSum   []float64 `json:"allan_sum_ppb2"`
	AllanTerms []float64 `json:"allan_terms"`
}

// NewKept returns the record of s as measured at now.
func NewKept(s bound.Stability, now time.Time) Kept {
	return Kept{Version: KeptVersion, SavedAt: now.UTC(), AllanSum: s.Sum[:], AllanTerms: s.N[:]}
}

// Stability returns the record's stability if it may seed a discipline at
// now: the version known, a sum and a count for every octave that
// validate, and saved at most MaxKeptAge before now and not after it (a
// clock that reads before the save, as a board without a real-time clock
// does at boot, cannot tell the age).
func (k Kept) Stability(now time.Time) (bound.Stability, error) {
	var s bound.Stability
	if k.Version != KeptVersion {
		return s, fmt.Errorf("version %d, want %d", k.Version, KeptVersion)
	}
	if len(k.AllanSum) != bound.Octaves || len(k.AllanTerms) != bound.Octaves {
		return s, fmt.Errorf("%d sums and %d counts, want %d of each", len(k.AllanSum), len(k.AllanTerms), bound.Octaves)
	}
	copy(s.Sum[:], k.AllanSum)
	copy(s.N[:], k.AllanTerms)
	if err := s.Validate(); err != nil {
		return bound.Stability{}, err
	}
	switch age := now.Sub(k.SavedAt); {
	case k.SavedAt.IsZero():
		return bound.Stability{}, errors.New("no saved_at")
	case age < 0:
		return bound.Stability{}, fmt.Errorf("saved at %s, after the clock's %s: its age is unknown",
			k.SavedAt.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case age > MaxKeptAge:
		return bound.Stability{}, fmt.Errorf("saved %s ago, more than %s", age.Round(time.Minute), MaxKeptAge)
	}
	return s, nil
}

// ParseKept decodes a kept stability file and returns the stability it
// may seed at now.
func ParseKept(b []byte, now time.Time) (bound.Stability, error) {
	var k Kept
	if err := json.Unmarshal(b, &k); err != nil {
		return bound.Stability{}, err
	}
	return k.Stability(now)
}

// LoadKept reads the kept stability at path. ok is false, with no error,
// when there is no file.
func LoadKept(path string, now time.Time) (s bound.Stability, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	if s, err = ParseKept(b, now); err != nil {
		return s, false, fmt.Errorf("%s: %w", path, err)
	}
	return s, true, nil
}

// SaveKept writes s as measured at now to path (synced, renamed into
// place, mode 0600).
func SaveKept(path string, s bound.Stability, now time.Time) error {
	b, err := json.MarshalIndent(NewKept(s, now), "", "  ")
	if err != nil {
		return err
	}
	return keyfile.WriteAtomic(path, append(b, '\n'), 0o600)
}
