package timing

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/timing/bound"
	"github.com/aunsorm/timenode/timing/servo"
)

// KeptVersion is the format version of the kept discipline file.
const KeptVersion = 1

// MaxKeptAge is how old a kept record may be and still seed a restarted
// discipline. It describes an oscillator in its place: an update or a
// reconfiguration restarts within minutes, while a node that was off for
// longer may have been moved, or its board replaced, and learns afresh.
const MaxKeptAge = 24 * time.Hour

// keptClockSlack is how far before the save the clock may read at start
// and the record still count as fresh: the clock is read before it is
// disciplined, and a real-time clock, or the simulation's start, is off
// by up to seconds.
const keptClockSlack = time.Minute

// Kept is what the daemon keeps of the discipline across restarts, as
// JSON in its state directory: the oscillator's stability as measured
// (Status.Allan, per octave τ = 2^m s), its frequency history
// (Status.FrequencyHistory) and the servo's memory (Status.ServoMemory),
// when it had them.
type Kept struct {
	Version int       `json:"version"`
	SavedAt time.Time `json:"saved_at"`
	// AllanSum (ppb²) and AllanTerms are bound.Stability's Sum and N.
	AllanSum   []float64 `json:"allan_sum_ppb2"`
	AllanTerms []float64 `json:"allan_terms"`
	// FrequencyHistory is absent in files written before it was kept:
	// the restarted node then measures it afresh.
	FrequencyHistory []bound.FrequencyBlock `json:"frequency_history,omitempty"`
	Servo            *servo.Memory          `json:"servo,omitempty"`
	// ClockID is the clock the servo memory's frequency was measured on
	// (Status.ClockID): only a discipline on the same clock starts from
	// that frequency.
	ClockID string `json:"clock_id,omitempty"`
}

// NewKept returns the record of what st has learnt, as of now.
func NewKept(st *Status, now time.Time) Kept {
	return Kept{Version: KeptVersion, SavedAt: now.UTC(), AllanSum: st.Allan.Sum[:], AllanTerms: st.Allan.N[:],
		FrequencyHistory: st.FrequencyHistory.Blocks(), Servo: st.ServoMemory, ClockID: st.ClockID}
}

// KeptFrequency is an oscillator's free-running frequency as an earlier
// run measured it (servo.Memory's FreqPPB, FreqVar and FreqWalk), on the
// clock ClockID names, as of SavedAt.
type KeptFrequency struct {
	ClockID                    string
	SavedAt                    time.Time
	FreqPPB, FreqVar, FreqWalk float64
}

// Stability returns the record's Allan sums.
func (k Kept) Stability() bound.Stability {
	var s bound.Stability
	copy(s.Sum[:], k.AllanSum)
	copy(s.N[:], k.AllanTerms)
	return s
}

// Validate reports why the record may not seed a discipline at now, if
// it may not: a version it does not know, sums that do not validate, a
// servo memory no bank could have made, or saved more than MaxKeptAge
// before now, or more than a minute after it (a clock that reads that far
// before the save, as a board without a real-time clock does at boot,
// cannot tell the age). Whether the servo memory fits the servo's bank is
// the servo's to judge.
func (k Kept) Validate(now time.Time) error {
	if k.Version != KeptVersion {
		return fmt.Errorf("version %d, want %d", k.Version, KeptVersion)
	}
	if len(k.AllanSum) != bound.Octaves || len(k.AllanTerms) != bound.Octaves {
		return fmt.Errorf("%d sums and %d counts, want %d of each", len(k.AllanSum), len(k.AllanTerms), bound.Octaves)
	}
	if err := k.Stability().Validate(); err != nil {
		return err
	}
	if err := bound.ValidateFrequencyBlocks(k.FrequencyHistory); err != nil {
		return err
	}
	if k.Servo != nil {
		if err := k.Servo.Validate(); err != nil {
			return fmt.Errorf("servo: %w", err)
		}
	}
	switch age := now.Sub(k.SavedAt); {
	case k.SavedAt.IsZero():
		return errors.New("no saved_at")
	case age < -keptClockSlack:
		return fmt.Errorf("saved at %s, after the clock's %s: its age is unknown",
			k.SavedAt.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case age > MaxKeptAge:
		return fmt.Errorf("saved %s ago, more than %s", age.Round(time.Minute), MaxKeptAge)
	}
	return nil
}

// Seed makes cfg's discipline start from the record: the frequency too
// when the record names its clock (the discipline checks it is the same).
func (k Kept) Seed(cfg *Config) {
	s := k.Stability()
	cfg.Stability, cfg.ServoMemory, cfg.FrequencyHistory = &s, k.Servo, k.FrequencyHistory
	if m := k.Servo; m != nil && m.FreqVar > 0 && k.ClockID != "" {
		cfg.KeptFrequency = &KeptFrequency{ClockID: k.ClockID, SavedAt: k.SavedAt,
			FreqPPB: m.FreqPPB, FreqVar: m.FreqVar, FreqWalk: m.FreqWalk}
	}
}

// ParseKept decodes a kept discipline file and validates it at now.
func ParseKept(b []byte, now time.Time) (Kept, error) {
	var k Kept
	if err := json.Unmarshal(b, &k); err != nil {
		return Kept{}, err
	}
	if err := k.Validate(now); err != nil {
		return Kept{}, err
	}
	return k, nil
}

// LoadKept reads the kept discipline at path. ok is false, with no
// error, when there is no file.
func LoadKept(path string, now time.Time) (k Kept, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return k, false, nil
	}
	if err != nil {
		return k, false, err
	}
	if k, err = ParseKept(b, now); err != nil {
		return k, false, fmt.Errorf("%s: %w", path, err)
	}
	return k, true, nil
}

// SaveKept writes k to path (synced, renamed into place, mode 0600).
func SaveKept(path string, k Kept) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	return keyfile.WriteAtomic(path, append(b, '\n'), 0o600)
}

// clockID returns the steered clock's identity, "" if it has none that
// outlives the process (or cannot read it, which is logged).
func (d *Discipline) clockID() string {
	c, ok := d.clk.(clock.Identified)
	if !ok {
		return ""
	}
	id, err := c.ClockID()
	if errors.Is(err, clock.ErrNoIdentity) {
		return ""
	}
	if err != nil {
		d.log.Warn("clock identity unknown: a restart will learn the frequency afresh", "err", err)
		return ""
	}
	return id
}

// offerFrequency offers the servo a kept frequency if it was
// measured on this clock, with its variance grown by the filter's random
// walk over the gap since it was saved.
func (d *Discipline) offerFrequency(k KeptFrequency) {
	notUsed := func(reason string) {
		d.log.Info("kept frequency not used; the servo measures it afresh", "reason", reason)
	}
	gap := d.clk.Now().Sub(k.SavedAt)
	switch {
	case d.cur.ClockID == "":
		notUsed("the clock cannot say whether it is the one it was measured on")
		return
	case k.ClockID != d.cur.ClockID:
		notUsed("measured on another clock or boot (" + k.ClockID + ")")
		return
	case gap < -keptClockSlack:
		notUsed("saved after the clock's reading: the gap is unknown")
		return
	}
	sigma := math.Sqrt(k.FreqVar + k.FreqWalk*max(gap.Seconds(), 0))
	d.servo.SetFrequencyPrior(k.FreqPPB, sigma)
	d.log.Info("kept frequency offered to the servo", "freq_ppb", k.FreqPPB, "sigma_ppb", sigma,
		"gap", gap.Round(time.Second))
}

// judgePrior logs what the servo made of an offered frequency, once it
// has judged it.
func (d *Discipline) judgePrior() {
	if v, ok := d.servo.TakePriorVerdict(); ok {
		logPriorVerdict(d.log, v)
	}
}

// logPriorVerdict says in the journal what became of a kept frequency.
func logPriorVerdict(log *slog.Logger, v servo.PriorVerdict) {
	kept := []any{"kept_ppb", v.KeptPPB, "kept_sigma_ppb", v.KeptSigma}
	both := append(kept[:len(kept):len(kept)], "measured_ppb", v.FilterPPB, "measured_sigma_ppb", v.FilterSigma)
	switch {
	case v.Withdrawn:
		log.Info("kept frequency withdrawn before the servo could judge it: the servo re-acquired and measures it afresh", kept...)
	case v.Used:
		log.Info("kept frequency agrees with the servo's measurement: taken in", both...)
	default:
		log.Warn("kept frequency disagrees with the servo's measurement: dropped", both...)
	}
}
