package integrity

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/aunsorm/timenode/signer/keyfile"
)

// MemoryVersion is the version of the Memory file format.
const MemoryVersion = 1

// Memory is what the integrity check keeps across a restart: the policy's
// state with the evidence that put it there, and the antenna position the
// survey learnt. Without it a restart, which an attacker may provoke,
// would forget an untrusted GNSS and re-survey the antenna where the
// spoofer puts it.
type Memory struct {
	Version  int        `json:"version"`
	State    string     `json:"state"`
	Since    time.Time  `json:"since"`
	Why      string     `json:"why,omitempty"`
	Evidence []Evidence `json:"evidence,omitempty"`
	// Antenna is the surveyed position, absent while the survey runs or
	// when the position is configured.
	Antenna *Fix      `json:"antenna,omitempty"`
	Saved   time.Time `json:"saved"`
	// ResidualNs is Policy.Residual: absent (zero) in files from before
	// it was kept, which restore it from the evidence.
	ResidualNs int64 `json:"residual_ns,omitempty"`
	// DriftNsPerS and DriftFrom are Policy.Drift and since when it
	// grows the widening, so that a restart does not stop the growth.
	DriftNsPerS float64   `json:"drift_ns_per_s,omitempty"`
	DriftFrom   time.Time `json:"drift_from,omitzero"`
	// PPSFit is the measured stability the PPS check was calibrated with
	// (Calibrate), absent until it was; a restart keeps the calibration,
	// so that a node calibrated in monitor mode can be switched to
	// enforce without its class's false alarms coming back.
	PPSFit *PowerLaw `json:"pps_fit,omitempty"`
	// WitnessHistory is the witnesses' measurements the guard keeps
	// (KeepWitnessHistory), so that a restart keeps what a drag is dated
	// from and what the node's move is measured against
	// (WitnessDeparture). Absent without witnesses.
	WitnessHistory []WitnessRecord `json:"witness_history,omitempty"`
	// PPSHeld is the PPS check's held line as the daemon last kept it
	// (while the check holds one), so that the next run judges GNSS
	// against the oscillator's line from before the alarm rather than
	// learn one from the pulses it then sees. SaveMemory writes it to
	// its own file (HeldPath); LoadMemory also takes it from here, where
	// files written before that kept it.
	PPSHeld *PPSHeldRecord `json:"pps_held,omitempty"`
}

// PPSHeldRecord ties a held line to the clock it was measured on. The
// line is in the guard's frame: the phase of pulse n is the free-running
// reading (the clock's reading minus the steering's corrections, from the
// guard's first pulse) minus n·(1e9 + SlopeNsPerS). At clock reading At
// the free-running reading was FreeNs and the steering ran the clock at
// FreqPPB, on the clock ClockID names (hw/clock.Identified).
type PPSHeldRecord struct {
	Line        HeldLine  `json:"line"`
	SlopeNsPerS float64   `json:"slope_ns_per_s"`
	ClockID     string    `json:"clock_id"`
	At          time.Time `json:"at"`
	FreeNs      float64   `json:"free_ns"`
	FreqPPB     float64   `json:"freq_ppb"`
}

// validate reports what in r no stopping daemon could have written.
func (r PPSHeldRecord) validate() error {
	if err := r.Line.Validate(); err != nil {
		return err
	}
	for _, v := range []float64{r.SlopeNsPerS, r.FreeNs, r.FreqPPB} {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 1e18 {
			return fmt.Errorf("slope %v ns/s, free-running reading %v ns, frequency %v ppb: want finite ones", r.SlopeNsPerS, r.FreeNs, r.FreqPPB)
		}
	}
	// A slope or frequency beyond 0.1 % is no oscillator the servo steers
	// (its clamp is 500 ppm).
	if math.Abs(r.SlopeNsPerS) > 1e6 || math.Abs(r.FreqPPB) > 1e6 {
		return fmt.Errorf("slope %v ns/s, frequency %v ppb: want at most 1e6 in size", r.SlopeNsPerS, r.FreqPPB)
	}
	if r.ClockID == "" || len(r.ClockID) > 256 || r.At.IsZero() {
		return fmt.Errorf("clock %q at %v: want the clock's identity and the time it was read", r.ClockID, r.At)
	}
	return nil
}

// WitnessRecord is a Measurement as the memory file keeps it.
type WitnessRecord struct {
	Witness       string    `json:"w"`
	At            time.Time `json:"at"`
	OffsetNs      int64     `json:"offset_ns"`
	UncertaintyNs int64     `json:"uncertainty_ns"`
}

// maxWitnessRecords bounds the history a memory file may hold: 20
// witnesses at one measurement per witnessSpacing over WitnessHistory
// (KeepWitnessHistory keeps no more), so a crafted file cannot make the
// daemon hold or scan an unbounded history.
const maxWitnessRecords = 20 * int(WitnessHistory/witnessSpacing+2)

// WitnessRecords converts measurements for a Memory.
func WitnessRecords(ms []Measurement) []WitnessRecord {
	out := make([]WitnessRecord, len(ms))
	for i, m := range ms {
		out[i] = WitnessRecord{Witness: m.Witness, At: m.At, OffsetNs: int64(m.Offset), UncertaintyNs: int64(m.Uncertainty)}
	}
	return out
}

// RestoreWitnessHistory returns the records of m that are still history
// at now (not after it, not older than WitnessHistory), as measurements
// in time order.
func (m Memory) RestoreWitnessHistory(now time.Time) []Measurement {
	var out []Measurement
	for _, r := range m.WitnessHistory {
		if r.At.After(now) || now.Sub(r.At) > WitnessHistory {
			continue
		}
		out = append(out, Measurement{Witness: r.Witness, At: r.At, Offset: time.Duration(r.OffsetNs), Uncertainty: time.Duration(r.UncertaintyNs)})
	}
	slices.SortStableFunc(out, func(a, b Measurement) int { return a.At.Compare(b.At) })
	return out
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, error) {
	for st := StateTrusted; st <= StateUntrusted; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown integrity state %q", s)
}

// Memory returns the policy's state for a Memory (the antenna is the
// caller's to add).
func (p *Policy) Memory(now time.Time) Memory {
	m := Memory{Version: MemoryVersion, State: p.state.String(), Since: p.since, Saved: now, ResidualNs: int64(p.residual)}
	if p.drift > 0 {
		m.DriftNsPerS, m.DriftFrom = p.drift, p.driftFrom
	}
	if p.state != StateTrusted {
		m.Why = p.why
		m.Evidence = append([]Evidence(nil), p.cause...)
	}
	return m
}

// Restore puts the policy back in the remembered state at now. The clocks
// that let it fall back start again at now: a node restarted while
// untrusted stays untrusted for the full HoldOff, however long the
// restart took, because the attack may have lasted through it. It returns
// the state restored.
func (p *Policy) Restore(m Memory, now time.Time) (State, error) {
	st, err := ParseState(m.State)
	if err != nil {
		return p.state, err
	}
	p.state, p.since, p.why = st, m.Since, m.Why
	if p.since.IsZero() || p.since.After(now) {
		p.since = now
	}
	p.cause = append([]Evidence(nil), m.Evidence...)
	p.residual = max(time.Duration(m.ResidualNs), 0)
	if m.DriftNsPerS > 0 && !math.IsInf(m.DriftNsPerS, 0) {
		p.drift, p.driftFrom = m.DriftNsPerS, m.DriftFrom
		if p.driftFrom.IsZero() || p.driftFrom.After(now) {
			p.driftFrom = now
		}
	}
	if st == StateUntrusted {
		p.residual = max(p.residual, measured(p.cause))
		p.lastUp = now
	}
	if st >= StateSuspect {
		p.lastSus = now
	}
	return st, nil
}

// HeldPath is the file beside the memory file at path that keeps its PPS
// held line. The daemon rewrites the line every few minutes while it is
// held (and as the steering moves); on its own it is a few hundred
// bytes, where the memory file with a 4 h witness history is about
// 107 KB.
func HeldPath(path string) string { return path + ".pps-held" }

// LoadMemory reads a Memory file and the held line beside it (HeldPath),
// which, when present, is the Memory's PPSHeld. A missing memory file is
// no memory (ok false, no error), whatever lies beside it: removing the
// memory file is how an operator resets the check. A file that cannot be
// read or parsed is an error.
func LoadMemory(path string) (m Memory, ok bool, err error) {
	if ok, err := readJSON(path, &m); !ok || err != nil {
		return Memory{}, false, err
	}
	if m.Version != MemoryVersion {
		return Memory{}, false, fmt.Errorf("%s: version %d, want %d", path, m.Version, MemoryVersion)
	}
	if _, err := ParseState(m.State); err != nil {
		return Memory{}, false, fmt.Errorf("%s: %w", path, err)
	}
	if a := m.Antenna; a != nil && (!a.Valid || a.LatDeg < -90 || a.LatDeg > 90 || a.LonDeg < -180 || a.LonDeg > 180) {
		return Memory{}, false, fmt.Errorf("%s: antenna position %+v is not a valid fix", path, *a)
	}
	if f := m.PPSFit; f != nil {
		for _, v := range []float64{f.R, f.Qwf, f.Qrw, f.DriftPPBPerS} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return Memory{}, false, fmt.Errorf("%s: pps_fit %+v: want finite, non-negative terms", path, *f)
			}
		}
	}
	if n := len(m.WitnessHistory); n > maxWitnessRecords {
		return Memory{}, false, fmt.Errorf("%s: witness_history holds %d measurements, more than the %d a node keeps", path, n, maxWitnessRecords)
	}
	for i, r := range m.WitnessHistory {
		if r.Witness == "" || len(r.Witness) > 1024 || r.At.IsZero() || r.UncertaintyNs < 0 {
			return Memory{}, false, fmt.Errorf("%s: witness_history[%d] %+v: want a witness name, a time and a non-negative uncertainty", path, i, r)
		}
	}
	if r := m.PPSHeld; r != nil {
		if err := r.validate(); err != nil {
			return Memory{}, false, fmt.Errorf("%s: pps_held: %w", path, err)
		}
	}
	held, err := loadHeld(HeldPath(path))
	if err != nil {
		return Memory{}, false, err
	}
	if held != nil {
		m.PPSHeld = held
	}
	return m, true, nil
}

// loadHeld reads a held-line file: nil if there is none.
func loadHeld(path string) (*PPSHeldRecord, error) {
	var r PPSHeldRecord
	if ok, err := readJSON(path, &r); !ok || err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// readJSON reads the JSON file at path into v: false, no error, if there
// is no file; a parse error names the path.
func readJSON(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}

// writeJSON writes v to path as indented JSON, atomically and readable
// by the owner only (keyfile.WriteAtomic).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return keyfile.WriteAtomic(path, append(b, '\n'), 0o600)
}

// SaveMemory writes m to path atomically, readable by the owner only
// (keyfile.WriteAtomic: synced, renamed into place, directory synced),
// and its held line to HeldPath(path) (SaveHeld). A witness history
// longer than LoadMemory takes (more than 20 witnesses' worth) is cut to
// its latest measurements: a file the daemon refuses would start it
// untrusted.
func SaveMemory(path string, m Memory) error {
	if n := len(m.WitnessHistory); n > maxWitnessRecords {
		m.WitnessHistory = m.WitnessHistory[n-maxWitnessRecords:]
	}
	held := m.PPSHeld
	m.PPSHeld = nil
	// The line first: a crash between the two then leaves at worst a
	// new line beside an older memory, never a line an operator's reset
	// (removing the memory file) left behind beside a new one.
	if err := SaveHeld(path, held); err != nil {
		return err
	}
	return writeJSON(path, m)
}

// SaveHeld writes r as the held line of the memory file at path
// (HeldPath), atomically and readable by the owner only, or removes it
// when r is nil; the memory file itself is left as it is.
func SaveHeld(path string, r *PPSHeldRecord) error {
	hp := HeldPath(path)
	if r == nil {
		err := os.Remove(hp)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		// A line that came back after a power cut would be judged
		// against again.
		return keyfile.SyncDir(filepath.Dir(hp))
	}
	return writeJSON(hp, r)
}
