package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/netsvc"
	"github.com/aunsorm/timenode/timing"
	"github.com/aunsorm/timenode/timing/integrity"
)

// Integrity modes (--integrity).
const (
	// integrityEnforce: untrusted GNSS is not followed, a suspect one
	// widens the published bound.
	integrityEnforce = "enforce"
	// integrityMonitor: everything is judged, logged and exported, but
	// nothing served changes (for an oscillator whose model is not known
	// yet: a false alarm must not take the node out of service).
	integrityMonitor = "monitor"
	// integrityOff: no checks at all.
	integrityOff = "off"
)

// guardConfig configures the daemon's integrity guard.
type guardConfig struct {
	Mode     string
	PPS      integrity.PPSConfig
	Position integrity.PositionConfig
	Receiver integrity.ReceiverConfig
	Policy   integrity.PolicyConfig
	Witness  integrity.WitnessConfig
	// MemoryPath is where the policy's state and the surveyed antenna
	// are kept across restarts (integrity.Memory); empty keeps nothing.
	MemoryPath string
}

// discipline is what the guard needs of the timing discipline: its status,
// and to be told while GNSS is withheld from it and since when it may
// have been false (timing.Discipline).
type discipline interface {
	Status() *timing.Status
	SetWithheld(bool)
	SetSuspectSince(time.Time)
}

// guard owns the integrity detectors and the policy (one goroutine: run),
// decides which PPS edges and fixes reach the discipline, and publishes
// the policy's status for the servers and the metrics.
type guard struct {
	cfg   guardConfig
	steer *steerLog
	disc  discipline
	sky   func() gnss.SkyView
	log   *slog.Logger

	pps     *integrity.PPSDetector
	hold    *integrity.HoldoverCheck // GNSS against the held-over clock
	pos     *integrity.PositionDetector
	rcv     *integrity.ReceiverDetector
	policy  *integrity.Policy
	counter *integrity.Counter
	status  atomic.Pointer[integrity.Status]
	last    *integrity.Transition

	// The stability the discipline measured that the PPS check is
	// calibrated with (nil: the configured class alone), and when.
	ppsFit       *integrity.PowerLaw
	calibratedAt time.Time

	// Pulse bookkeeping for the free-running phase: the step generation
	// it is valid for, the first edge's local time, the last edge's
	// free-running reading (ns since anchor) and its pulse count.
	gen      uint64
	started  bool
	anchor   time.Time
	lastFree float64
	sec      int64
	lastEdge time.Time
	// The oscillator's frequency against GNSS (ns/s), estimated once per
	// generation from its first slopePulses pulses (held until then) and
	// then fixed: removed from the phase so the detector's median sees a
	// flat line even across gaps, and fixed so it cannot follow a drag.
	slope     float64
	haveSlope bool
	early     []earlyPulse
	// keptHeld is the held line the previous run left (restoreHeld),
	// until this run's first pulse places it in its frame.
	keptHeld *integrity.PPSHeldRecord
	// overlapSkipped is the step generation whose first edge was skipped
	// as perhaps stamped before a step back (observePulse).
	overlapSkipped uint64
	// heldWritten: the memory file holds a PPS held line. heldSaved is
	// when the guard last wrote the file, heldCorr and heldPPB the
	// steering then (keepHeld); heldFailed when a write last failed.
	heldWritten       bool
	heldSaved         time.Time
	heldCorr, heldPPB float64
	heldFailed        time.Time

	witnessMu sync.Mutex
	witnesses map[string]integrity.Measurement
	// witnessHist is every measurement of the last
	// integrity.WitnessHistory: a quorum that disagrees dates the drag
	// from it, and the discipline holds over from before that.
	witnessHist []integrity.Measurement
	witnessGen  uint64 // step generation the measurements belong to
	// witnessSaved is when the history was last written to the memory
	// file (remember).
	witnessSaved time.Time

	// pastPolicy: the published bound keeps a servable node out of
	// service (logPolicy).
	pastPolicy bool

	// The antenna position was configured (not surveyed, not remembered);
	// the end of the survey has been handled (written to the memory file,
	// or logged as not written: a later transition writes it again).
	antennaConfigured, antennaSaved bool
}

// newGuard returns a guard in the trusted state at now.
func newGuard(cfg guardConfig, steer *steerLog, disc discipline, sky func() gnss.SkyView, now time.Time, log *slog.Logger) *guard {
	log = log.With("component", "integrity")
	mem, haveMem := recall(cfg.MemoryPath, now, log)
	configured := cfg.Position.Known != nil
	if haveMem && mem.Antenna != nil && !configured {
		cfg.Position.Known = mem.Antenna
		log.Info("antenna position restored from the survey", "path", cfg.MemoryPath,
			"lat_deg", mem.Antenna.LatDeg, "lon_deg", mem.Antenna.LonDeg, "alt_m", mem.Antenna.AltM)
	}
	g := &guard{
		cfg: cfg, steer: steer, disc: disc, sky: sky, log: log,
		antennaConfigured: configured, antennaSaved: cfg.Position.Known != nil && !configured,
		pps:       integrity.NewPPSDetector(cfg.PPS),
		early:     []earlyPulse{},
		hold:      integrity.NewHoldoverCheck(),
		pos:       integrity.NewPositionDetector(cfg.Position),
		rcv:       integrity.NewReceiverDetector(cfg.Receiver),
		policy:    integrity.NewPolicy(cfg.Policy, now),
		counter:   integrity.NewCounter(integrity.AllKeys()...),
		witnesses: map[string]integrity.Measurement{},
	}
	log.Info("PPS check starts from the oscillator class", "class", integrity.ClassString(cfg.PPS.Model),
		"r_ns2", cfg.PPS.Model.R)
	if haveMem && mem.PPSFit != nil {
		fit := *mem.PPSFit
		g.ppsFit = &fit
		g.pps = g.newPPS()
		m := g.pps.Model()
		log.Info("PPS check calibration restored", "path", cfg.MemoryPath,
			"r_ns2", m.R, "qwf_ns2_per_s", m.Qwf, "qrw_ppb2_per_s", m.Qrw)
	}
	if haveMem {
		if st, err := g.policy.Restore(mem, now); err != nil {
			log.Error("integrity state not restored", "path", cfg.MemoryPath, "err", err)
		} else if st != integrity.StateTrusted {
			// /health and the metrics show the restored state as the
			// last transition, with the evidence that caused it.
			g.last = &integrity.Transition{At: now, From: integrity.StateTrusted, To: st,
				Why: "restored after a restart: " + mem.Why, Evidence: mem.Evidence}
			g.log.Warn("integrity state restored: the hold-off starts again now",
				"state", st.String(), "since", mem.Since, "why", mem.Why, "evidence", evidenceString(mem.Evidence),
				"path", cfg.MemoryPath, "enforced", cfg.Mode == integrityEnforce)
		}
		if r := mem.PPSHeld; r != nil {
			g.heldWritten = true
			if id, err := steer.ClockID(); err != nil || id != r.ClockID {
				log.Info("PPS check's held line not restored: it was measured on another clock (another boot); the check learns a new one",
					"path", cfg.MemoryPath, "kept_clock", r.ClockID, "clock", id, "err", err)
			} else {
				g.keptHeld = r
			}
		}
		if hist := mem.RestoreWitnessHistory(now); len(hist) > 0 {
			// Kept until the first step: the measurements were taken on
			// the clock as it runs on, and a step breaks that
			// (observeWitness).
			g.witnessHist = hist
			for _, m := range hist {
				g.witnesses[m.Witness] = m
			}
			g.witnessSaved = now
			log.Info("witness history restored", "path", cfg.MemoryPath, "measurements", len(hist),
				"from", hist[0].At, "to", hist[len(hist)-1].At)
		}
	}
	g.publish(now)
	return g
}

// witnessSaveEvery is how often the witness history is written to the
// memory file while it grows (also on every transition and at shutdown):
// a crash loses at most that much of it.
const witnessSaveEvery = 15 * time.Minute

// recall reads the integrity memory. A file that cannot be read is not
// taken as "trusted": the node starts untrusted and says why, because
// the file is only ever written whole (renamed into place), so a broken
// one is not an accident of the daemon's own.
func recall(path string, now time.Time, log *slog.Logger) (integrity.Memory, bool) {
	if path == "" {
		return integrity.Memory{}, false
	}
	m, ok, err := integrity.LoadMemory(path)
	if err == nil {
		return m, ok
	}
	log.Error("integrity memory unreadable: starting untrusted; check the node, then remove the file and restart", "path", path, "err", err)
	return integrity.Memory{Version: integrity.MemoryVersion, State: integrity.StateUntrusted.String(), Since: now,
		Why: "integrity memory unreadable", Evidence: []integrity.Evidence{{
			At: now, Detector: "memory", Reason: "memory_unreadable", Level: integrity.LevelUntrusted}}}, true
}

// remember writes the policy's state, the surveyed antenna, the witness
// history and the PPS check's held line to the memory file (on every
// transition, when the survey completes, and as keepHeld and evaluate
// say).
func (g *guard) remember(now time.Time) {
	held, _ := g.heldToKeep(now, heldCrashMargin)
	g.write(now, held)
}

// While a held line is kept, the memory file is written again when the
// steering since the last write has moved the clock heldDriftNs from
// where the frequency set then would have taken it, and at least every
// heldRefreshEvery (the next run takes a line kept at most maxHeldGap
// before it starts). A crash leaves the clock at the frequency the
// steering set last, and the next run carries the line over the time
// since the write at that frequency: it is off by the steering's drift
// from the write's frequency (under heldDriftNs, but for the second
// before the check) less the frequency change over that time (which
// carryHeld widens by). heldCrashMargin, added to every line written
// while the daemon runs, covers the first, twice over for that second.
// A node holding over steers at a steady frequency and writes every
// heldRefreshEvery; one steering by GNSS writes as its frequency
// wanders. Each write is the line alone (integrity.HeldPath), not the
// memory file with its 4 h witness history (107 KB with three witnesses
// asked every 64 s).
const (
	heldDriftNs      = 500.0
	heldCrashMargin  = 2 * heldDriftNs
	heldRefreshEvery = 5 * time.Minute
	// heldRetryAfter spaces writes after one failed: a disk that refuses
	// gets one error line per interval.
	heldRetryAfter = time.Minute
)

// keepHeld writes the held line (integrity.SaveHeld) when it is due to
// be written again, or removes it when it has cleared (or can no longer
// be placed) since it was written; every second (evaluate), so a line the
// previous run left is kept current before this run's first pulse too.
// The line is built (and the clock's identity read) only when a write
// may be due.
func (g *guard) keepHeld(now time.Time) {
	holding := g.keptHeld != nil || g.pps.Held()
	if !holding && !g.heldWritten || now.Sub(g.heldFailed) < heldRetryAfter {
		return
	}
	if holding && g.heldWritten {
		corr, _, _ := g.steer.Steering(now)
		drift := corr - g.heldCorr - g.heldPPB*1e-9*float64(now.Sub(g.heldSaved))
		if now.Sub(g.heldSaved) < heldRefreshEvery && math.Abs(drift) < heldDriftNs {
			return
		}
	}
	held, _ := g.heldToKeep(now, heldCrashMargin)
	if held == nil && !g.heldWritten {
		return
	}
	// The line alone: the memory file around it changes on transitions
	// and with the witness history, which write keeps.
	if err := integrity.SaveHeld(g.cfg.MemoryPath, held); err != nil {
		g.log.Error("PPS check's held line not saved: a crash would lose it", "path", integrity.HeldPath(g.cfg.MemoryPath), "err", err)
		g.heldFailed = now
		return
	}
	g.wroteHeld(now, held)
}

// stop writes the memory file at shutdown, with the PPS check's held
// line if it holds one: a stopping daemon writes the line with the
// steering as it leaves it, so the next run need only widen it for the
// frequency the discipline sets last.
func (g *guard) stop(now time.Time) {
	held, err := g.heldToKeep(now, 0)
	if held != nil || g.heldWritten || g.haveWitnessHistory() {
		g.write(now, held)
	}
	switch {
	case held != nil && g.keptHeld != nil:
		g.log.Info("PPS check's held line carried to the next run: no pulse came in this run to place it on the clock",
			"why", held.Line.Why, "path", g.cfg.MemoryPath)
	case held != nil:
		g.log.Info("PPS check's held line kept for the next run", "why", held.Line.Why, "path", g.cfg.MemoryPath)
	case err != nil:
		g.log.Info("PPS check's held line not kept: the next run cannot place it on the clock", "err", err)
	}
}

// heldToKeep is the held line to write to the memory file now, tied to
// the clock and widened by margin (ns): the PPS check's own, or the
// previous run's that no pulse has placed in this run's frame yet,
// carried to now in its own frame. It is nil if there is none, and nil
// with the reason if it cannot be tied (a clock without an identity, a
// carried line the gap or the clock makes useless).
func (g *guard) heldToKeep(now time.Time, margin float64) (*integrity.PPSHeldRecord, error) {
	if g.cfg.MemoryPath == "" {
		return nil, nil
	}
	// A step is in the correction like any steering, so it moves the
	// frame's free-running reading not at all: observePulse keeps a held
	// line through one, and a carried line is carried through one.
	corr, ppb, _ := g.steer.Steering(now)
	if r := g.keptHeld; r != nil {
		origin, originPPB := g.steer.Origin()
		c, err := carryHeld(*r, origin, originPPB, now, corr, ppb)
		if err != nil {
			return nil, err
		}
		c.Line.ExtraNs += margin
		return &c, nil
	}
	line, ok := g.pps.HeldLine()
	if !ok || !g.started || !g.haveSlope {
		return nil, nil
	}
	id, err := g.steer.ClockID()
	if err != nil {
		return nil, err
	}
	line.ExtraNs += margin
	return &integrity.PPSHeldRecord{Line: line, SlopeNsPerS: g.slope, ClockID: id, At: now,
		FreeNs: float64(now.Sub(g.anchor)) - corr, FreqPPB: ppb}, nil
}

// write saves the memory file, with held as its PPS line (nil: none).
func (g *guard) write(now time.Time, held *integrity.PPSHeldRecord) {
	if g.cfg.MemoryPath == "" {
		return
	}
	m := g.policy.Memory(now)
	if f, ok := g.pos.Held(); ok && !g.antennaConfigured {
		m.Antenna = &f
	}
	m.PPSFit = g.ppsFit
	m.PPSHeld = held
	g.witnessMu.Lock()
	m.WitnessHistory = integrity.WitnessRecords(g.witnessHist)
	g.witnessMu.Unlock()
	// Saved or not, the history is not tried again before the next
	// interval, nor the held line before heldRetryAfter.
	g.witnessSaved = now
	if err := integrity.SaveMemory(g.cfg.MemoryPath, m); err != nil {
		g.log.Error("integrity memory not saved: a restart would forget this state", "path", g.cfg.MemoryPath, "err", err)
		g.heldFailed = now
		return
	}
	g.wroteHeld(now, held)
}

// wroteHeld notes that held (nil: none) is the line on disk as of now,
// and the steering it was written with.
func (g *guard) wroteHeld(now time.Time, held *integrity.PPSHeldRecord) {
	g.heldWritten, g.heldSaved = held != nil, now
	g.heldCorr, g.heldPPB, _ = g.steer.Steering(now)
}

func (g *guard) haveWitnessHistory() bool {
	g.witnessMu.Lock()
	defer g.witnessMu.Unlock()
	return len(g.witnessHist) > 0
}

// Status is the latest published status; safe for concurrent use.
func (g *guard) Status() *integrity.Status { return g.status.Load() }

// Counts is the evidence counted per detector and reason.
func (g *guard) Counts() map[integrity.Key]uint64 { return g.counter.Snapshot() }

// Witnesses returns the latest measurement of every witness.
func (g *guard) Witnesses() []integrity.Measurement {
	g.witnessMu.Lock()
	defer g.witnessMu.Unlock()
	out := make([]integrity.Measurement, 0, len(g.witnesses))
	for _, m := range g.witnesses {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Witness < out[j].Witness })
	return out
}

func (g *guard) record(evs []integrity.Evidence) {
	if len(evs) == 0 {
		return
	}
	g.counter.Add(evs...)
	g.policy.Observe(evs...)
}

// earlyPulse is a pulse held until the frequency is estimated.
type earlyPulse struct {
	at   time.Time
	sec  int64
	free float64
	off  float64 // the edge's offset from its second on the node's clock (ns)
}

// The frequency is fitted over the first slopeFirst pulses, enough to arm
// the detector soon after start, and again over slopePulses, where with
// 1 µs timestamp noise a least-squares slope is good to about 7 ns/s; each
// fit restarts the detector on the pulses so far.
const (
	slopeFirst  = 16
	slopePulses = 64
)

// observePulse judges an edge's phase against the free-running
// oscillator. The pulse count is local (the edges' own spacing on the
// free-running clock), never the receiver's label, which a spoofer
// controls.
func (g *guard) observePulse(now time.Time, p pps.Pulse) {
	corr, gen := g.steer.Correction(p.Local)
	if g.started && gen != g.gen {
		switch {
		case g.steer.Overlaps(p.Local, g.gen) && g.overlapSkipped != gen:
			// Stamped where a step back doubled the readings: perhaps
			// before the step, which Correction cannot tell. The next
			// edge comes a second later, after it.
			g.overlapSkipped = gen
			return
		case !g.pps.Held():
			// A step with nothing held: the first lock's, or a return to
			// GNSS. Start the phase history afresh.
			g.pps = g.newPPS()
			g.started, g.haveSlope, g.early = false, false, []earlyPulse{}
		default:
			// The steer log counts the step in the correction, so the
			// free-running reading goes on across it and the check keeps
			// the line it holds: the step a spoofer's push beyond the
			// step threshold causes must not make it learn the pushed
			// line.
			g.gen = gen
			line, _ := g.pps.HeldLine()
			g.log.Info("PPS check's held line kept across a step of the clock", "why", line.Why)
		}
	}
	if !g.started {
		g.started, g.gen, g.anchor, g.lastFree, g.sec = true, gen, p.Local, -corr, 0
		g.lastEdge = p.Local
		if r := g.keptHeld; r != nil {
			g.keptHeld = nil
			g.restoreHeld(*r, p.Local, corr)
		}
		g.judgePulse(now, 0, -corr, stampOffset(p.Local))
		return
	}
	free := float64(p.Local.Sub(g.anchor)) - corr
	sec := g.sec + int64(math.Round((free-g.lastFree)/1e9))
	if sec > g.sec {
		g.sec, g.lastFree = sec, free
	}
	g.lastEdge = p.Local
	g.judgePulse(now, sec, free, stampOffset(p.Local))
	g.compareHeld(now, p.Local)
}

// maxHeldGap is the longest a held line is carried from the previous
// run's stop to this run's start: a restart takes seconds, and the
// longer the gap the more may have moved the clock unrecorded.
const maxHeldGap = 10 * time.Minute

// maxHeldWidening is the most a held line may be widened for what the
// restart leaves unknown (rebaseHeld); beyond it the line would judge
// nothing.
const maxHeldWidening = 100e3 // ns

// restoreHeld makes the PPS check hold the line the previous run kept,
// placed in this run's frame at its first pulse (local time anchor, the
// steering's correction corr there, steps included), with the
// previous run's oscillator frequency: the pulses are judged against the
// oscillator's line from before the alarm, not against one learnt from
// what GNSS says now.
func (g *guard) restoreHeld(r integrity.PPSHeldRecord, anchor time.Time, corr float64) {
	origin, originPPB := g.steer.Origin()
	line, err := rebaseHeld(r, origin, originPPB, anchor, corr)
	if err == nil {
		d := g.newPPS()
		if err = d.Hold(line); err == nil {
			g.pps, g.slope, g.haveSlope, g.early = d, r.SlopeNsPerS, true, nil
			g.log.Info("PPS check's held line restored: GNSS is judged against the oscillator's line from before the alarm",
				"why", line.Why, "held_s", -line.Sec, "widened_ns", line.ExtraNs)
			return
		}
	}
	g.log.Warn("PPS check's held line not restored; the check learns a new one from the pulses it sees", "err", err)
}

// carryHeld carries a held line kept at r.At, in its own frame, to local
// time at, in the frame of a steer log that starts at origin (correction
// 0, the clock at originPPB) and has correction corr and frequency ppb at
// at: the record the previous run would have written then. From r.At to
// the origin the clock ran at originPPB, what the previous run left it
// at; but it may have set that at any time after r.At, so the line is
// widened by the two frequencies' difference over the gap.
func carryHeld(r integrity.PPSHeldRecord, origin time.Time, originPPB float64, at time.Time, corr, ppb float64) (integrity.PPSHeldRecord, error) {
	gap := origin.Sub(r.At)
	switch {
	case gap < 0:
		return r, fmt.Errorf("the clock reads %v, before the line was kept at %v: it was set back", origin, r.At)
	case gap > maxHeldGap:
		return r, fmt.Errorf("kept %v before this start, more than %v", gap.Round(time.Second), maxHeldGap)
	}
	g := float64(gap)
	widen := math.Abs(originPPB-r.FreqPPB) * 1e-9 * g
	if widen > maxHeldWidening {
		return r, fmt.Errorf("the clock's frequency changed by %.0f ppb over the %v since the line was kept: %.0f ns unknown", originPPB-r.FreqPPB, gap.Round(time.Millisecond), widen)
	}
	r.FreeNs += g*(1-originPPB*1e-9) + float64(at.Sub(origin)) - corr
	r.Line.ExtraNs += widen
	r.At, r.FreqPPB = at, ppb
	return r, r.Line.Validate()
}

// rebaseHeld places a held line kept at r.At in the frame of a guard
// whose steer log starts at origin (correction 0, the clock at originPPB)
// and whose first pulse came at local time anchor, with correction corr
// there. The frames differ by a constant: the kept frame's free-running
// reading at the anchor (carryHeld) less this one's, −corr; the pulse
// count by the pulses the line says fell between.
func rebaseHeld(r integrity.PPSHeldRecord, origin time.Time, originPPB float64, anchor time.Time, corr float64) (integrity.HeldLine, error) {
	c, err := carryHeld(r, origin, originPPB, anchor, corr, originPPB)
	if err != nil {
		return r.Line, err
	}
	l := c.Line
	per := 1e9 + r.SlopeNsPerS
	n0 := math.Round((c.FreeNs - l.X + l.Y*float64(l.Sec)) / (per + l.Y))
	l.Sec -= int64(n0)
	l.X += n0*per - (c.FreeNs + corr)
	return l, l.Validate()
}

// compareHeld judges an edge against the node's own clock while the
// discipline holds over without GNSS (integrity.HoldoverCheck): GNSS
// outside the bound the node publishes is evidence, and the comparison is
// what the policy keeps when it follows GNSS again.
func (g *guard) compareHeld(now, edge time.Time) {
	st := g.Status()
	if st.FollowGNSS() {
		g.hold.Reset()
		return
	}
	ds := g.disc.Status()
	if ds == nil || !ds.FreeRunning() {
		g.hold.Reset()
		return
	}
	g.record(g.hold.Observe(now, stampOffset(edge), st.Bound(ds.BoundAt(edge))))
}

// newPPS is a PPS detector calibrated as the current one is.
func (g *guard) newPPS() *integrity.PPSDetector {
	c := g.cfg.PPS
	if g.ppsFit != nil {
		c.Model = integrity.Calibrate(c.Model, *g.ppsFit)
	}
	return integrity.NewPPSDetector(c)
}

// calibrateAfter is how long the discipline must have been LOCKED before
// the PPS check takes the measured stability, and how often it takes it
// again: the short-term terms are fitted well within minutes.
const calibrateAfter = 15 * time.Minute

// calibrate judges the PPS by the stability the node measured, once the
// discipline has been LOCKED for calibrateAfter with no evidence active
// from any check but the PPS one: the configured class (a TCXO by
// default) is only a guess at the board's timestamps and oscillator, and
// noisier ones raise false alarms against it within minutes, so
// calibration cannot wait for GNSS to be trusted. What bounds the harm of
// a fit taken during an attack is integrity.Calibrate's cap; an enforcing
// node that does not trust GNSS holds over, is not LOCKED, and takes no
// fit. The fit is kept in the memory file.
func (g *guard) calibrate(now time.Time) {
	if now.Sub(g.calibratedAt) < calibrateAfter {
		return
	}
	ist := g.status.Load()
	ds := g.disc.Status()
	if ist == nil || ds == nil || ds.State != timing.Locked || now.Sub(ds.StateSince) < calibrateAfter || !ds.StabilityFitted {
		return
	}
	for _, e := range ist.Active {
		if e.Detector != integrity.DetectorPPS {
			return
		}
	}
	g.calibratedAt = now
	fit := integrity.PowerLaw{R: ds.Stability.R, Qwf: ds.Stability.Qwf, Qrw: ds.Stability.Qrw}
	class, prev := g.cfg.PPS.Model, g.pps.Model()
	m := integrity.Calibrate(class, fit)
	g.ppsFit = &fit
	g.pps.SetModel(m)
	if relChange(m.R, prev.R) > 0.1 || relChange(m.Qwf, prev.Qwf) > 0.1 {
		g.remember(now)
		g.log.Info("PPS check calibrated with the measured stability",
			"r_ns2", m.R, "qwf_ns2_per_s", m.Qwf, "qrw_ppb2_per_s", m.Qrw,
			"measured_r_ns2", fit.R, "measured_qwf_ns2_per_s", fit.Qwf, "measured_qrw_ppb2_per_s", fit.Qrw,
			"class_r_ns2", class.R, "class_qwf_ns2_per_s", class.Qwf)
	}
}

// relChange is |a−b| relative to the larger of the two (0 if both are 0).
func relChange(a, b float64) float64 {
	if d := max(math.Abs(a), math.Abs(b)); d > 0 {
		return math.Abs(a-b) / d
	}
	return 0
}

// stampOffset is an edge's offset from the whole second it marks, on the
// node's clock: the discipline's offset, for an edge within half a second
// of its UTC second (a node that serves is far closer).
func stampOffset(local time.Time) float64 {
	return float64(local.Sub(local.Round(time.Second)))
}

// judgePulse hands the detector the phase against the oscillator: the
// free-running reading minus whole seconds and the fixed frequency. off
// is the edge's stampOffset, which places the node's clock on the
// detector's held line (integrity.AddNodeError).
func (g *guard) judgePulse(now time.Time, sec int64, free, off float64) {
	if g.early != nil || !g.haveSlope {
		g.early = append(g.early, earlyPulse{now, sec, free, off})
		switch len(g.early) {
		case slopeFirst, slopePulses:
			// Pulses judged before were counted then: their evidence
			// again would count twice (a held alarm keeps reporting).
			judged := 0
			if g.haveSlope {
				judged = len(g.early) - 1
			}
			g.slope, g.haveSlope = fitSlope(g.early), true
			g.pps = g.newPPS()
			for i, e := range g.early {
				evs := integrity.AddNodeError(g.pps.Observe(e.at, e.sec, e.free-float64(e.sec)*(1e9+g.slope)), e.off)
				if i >= judged {
					g.record(evs)
				}
			}
			if len(g.early) == slopePulses {
				g.early = nil
			}
			return
		}
		if !g.haveSlope {
			return
		}
	}
	g.record(integrity.AddNodeError(g.pps.Observe(now, sec, free-float64(sec)*(1e9+g.slope)), off))
}

// fitSlope is the least-squares slope of free − sec·1e9 against sec, in
// ns per second.
func fitSlope(ps []earlyPulse) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, p := range ps {
		x, y := float64(p.sec), p.free-float64(p.sec)*1e9
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// observeFix judges what the receiver said about one epoch: its sky and
// time, and its position against the held one.
func (g *guard) observeFix(now time.Time, f gnss.Fix) {
	sky := g.sky()
	var ppsTime time.Time
	// The node's clock at the labelled edge is a reference only once
	// the discipline has made the clock good.
	if st := g.disc.Status(); st.State == timing.Locked || st.State == timing.Holdover {
		if d := f.Received.Sub(g.lastEdge); !g.lastEdge.IsZero() && d > 0 && d < time.Second {
			ppsTime = g.lastEdge
		}
	}
	g.record(g.rcv.Observe(receiverSnapshot(now, f, sky, ppsTime)))
	if f.Valid && (f.Latitude != 0 || f.Longitude != 0 || f.Altitude != 0) {
		g.record(g.pos.Observe(now, integrity.Fix{LatDeg: f.Latitude, LonDeg: f.Longitude, AltM: f.Altitude, Valid: true}))
		if _, held := g.pos.Held(); held && !g.antennaSaved && !g.antennaConfigured {
			// Once: a file that cannot be written must not cost an
			// error line on every fix.
			g.antennaSaved = true
			g.log.Info("antenna survey complete; position held", "path", g.cfg.MemoryPath)
			g.remember(now)
		}
	}
}

// receiverSnapshot is one epoch as the receiver detector wants it: the
// fix's time and validity, and the sky the receiver reported with it.
func receiverSnapshot(now time.Time, f gnss.Fix, sky gnss.SkyView, ppsTime time.Time) integrity.Snapshot {
	s := integrity.Snapshot{
		At: now, Time: f.UTC, FixDims: int(sky.FixType),
		// GGA quality 8 is the receiver's simulator mode.
		Simulator: sky.FixQuality == 8,
		HDOP:      sky.HDOP, PDOP: sky.PDOP, PPSTime: ppsTime,
	}
	if s.HDOP == 0 {
		s.HDOP = f.HDOP
	}
	// The receiver's own claim of a fix: hw/gnss invalidates a fix dated
	// a week rollover early, and that time is exactly what the detector
	// must see. (Default and garbage dates come without a usable fix and
	// the discipline refuses them anyway.)
	s.FixValid = f.Valid || (f.Flags&gnss.FlagWeekRollover != 0 && sky.FixQuality >= 1 && sky.FixQuality <= 5)
	for _, c := range sky.Constellations {
		s.Satellites = append(s.Satellites, integrity.Constellation{System: c.Name, InView: c.InView, Used: c.Used})
	}
	for _, sat := range sky.Satellites {
		if sat.CN0 > 0 {
			s.CN0 = append(s.CN0, float64(sat.CN0))
		}
	}
	return s
}

// observeWitness records a measurement and judges the quorum against the
// bound the node publishes now.
func (g *guard) observeWitness(now time.Time, m integrity.Measurement) {
	// Before the discipline has made the clock good there is no time to
	// judge (it may be off by seconds until the first step), and a
	// measurement from then would outlive the step.
	if st := g.disc.Status().State; st != timing.Locked && st != timing.Holdover {
		return
	}
	g.witnessMu.Lock()
	if _, gen := g.steer.Correction(now); gen != g.witnessGen {
		if n := len(g.witnessHist); n > 0 {
			g.log.Info("witness history dropped: the clock was stepped since it was measured", "measurements", n)
		}
		clear(g.witnesses)
		g.witnessHist = g.witnessHist[:0]
		g.witnessGen = gen
	}
	g.witnesses[m.Witness] = m
	g.witnessHist = integrity.KeepWitnessHistory(g.witnessHist, now, m)
	ms := slices.Clone(g.witnessHist)
	g.witnessMu.Unlock()
	bound := g.Status().Bound(g.disc.Status().BoundAt(now))
	g.record(g.policy.JudgeWitnesses(now, bound, ms, g.cfg.Witness))
}

// evaluate runs the periodic checks and the policy, logs a transition
// and publishes the status.
func (g *guard) evaluate(now time.Time) {
	g.calibrate(now)
	if now.Sub(g.witnessSaved) >= witnessSaveEvery && g.haveWitnessHistory() {
		g.remember(now)
	}
	g.keepHeld(now)
	g.record(g.pps.Tick(now))
	if d, ok := g.hold.GNSSBound(now); ok {
		drift, _ := g.hold.Drift(now)
		g.policy.MeasureGNSS(now, d, drift)
	}
	if tr, ok := g.policy.Evaluate(now); ok {
		g.last = &tr
		g.logTransition(tr)
		g.remember(now)
	}
	g.publish(now)
}

func (g *guard) publish(now time.Time) {
	st := g.policy.Status(now, g.last)
	if g.cfg.Mode != integrityEnforce {
		st.Enforced, st.Widening = false, 0
	}
	g.status.Store(st)
	g.logPolicy(now, st)
}

// logPolicy logs when the widened bound takes a node out of service
// that its discipline would let serve, and when it serves again: the
// discipline's state does not change then, so without this line nothing
// in the journal says why /health turned unavailable.
func (g *guard) logPolicy(now time.Time, is *integrity.Status) {
	st := g.disc.Status()
	if st == nil {
		return
	}
	past := st.PastPolicy(now, is.Bound)
	if past == g.pastPolicy {
		return
	}
	attrs := []any{"state", st.State.String(), "bound", is.Bound(st.BoundAt(now)), "policy", st.MaxBound,
		"integrity", is.State.String(), "widening", is.Widening}
	switch {
	case past:
		g.log.Warn("published error bound past policy: not serving", attrs...)
	case st.Servable(now):
		g.log.Info("published error bound within policy: serving again", attrs...)
	}
	// Left otherwise by the discipline's own change of state, which
	// logs itself.
	g.pastPolicy = past
}

// logTransition logs one line per transition with its evidence: the
// message is stable for log-based alerting.
func (g *guard) logTransition(tr integrity.Transition) {
	level := slog.LevelWarn
	if tr.To < tr.From {
		level = slog.LevelInfo
	}
	g.log.Log(context.Background(), level, "integrity state changed", "from", tr.From.String(), "to", tr.To.String(),
		"why", tr.Why, "enforced", g.cfg.Mode == integrityEnforce, "evidence", evidenceString(tr.Evidence))
}

// evidenceString is evidence as the transition lines log it.
func evidenceString(evs []integrity.Evidence) string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = e.String()
	}
	return strings.Join(s, "; ")
}

// run judges pulses and fixes on their way to the discipline and passes
// them on only while GNSS may be followed: an untrusted GNSS gets no say,
// and the discipline holds over as if the reference were lost. tick
// drives the policy (every second).
func (g *guard) run(ctx context.Context, pulsesIn <-chan pps.Pulse, fixesIn <-chan gnss.Fix, measured <-chan integrity.Measurement,
	pulsesOut chan<- pps.Pulse, fixesOut chan<- gnss.Fix, tick <-chan time.Time, now func() time.Time) {
	withheld := false
	gate := func() bool {
		follow := g.Status().FollowGNSS()
		if follow == withheld {
			withheld = !follow
			if withheld {
				// Before the discipline holds over: it holds from its
				// state before this time.
				g.disc.SetSuspectSince(g.policy.SuspectSince())
			}
			g.disc.SetWithheld(withheld)
			if withheld {
				g.log.Warn("not following GNSS: pulses and fixes withheld from the discipline, which holds over")
			} else {
				g.log.Info("following GNSS again")
			}
		}
		return follow
	}
	// At shutdown the witness history since the last save is written,
	// and the PPS check's held line.
	defer func() { g.stop(now()) }()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-pulsesIn:
			g.observePulse(now(), p)
			if gate() {
				select {
				case pulsesOut <- p:
				case <-ctx.Done():
					return
				}
			}
		case f := <-fixesIn:
			g.observeFix(now(), f)
			if gate() {
				select {
				case fixesOut <- f:
				case <-ctx.Done():
					return
				}
			}
		case m := <-measured:
			g.observeWitness(now(), m)
		case <-tick:
			g.evaluate(now())
		}
	}
}

// pollWitnesses asks every witness once per interval and hands the
// measurements to the guard. Failures are logged when they change, and
// every answer or failure is recorded in reach, which lists ws.
func pollWitnesses(ctx context.Context, ws []integrity.Witness, interval time.Duration, out chan<- integrity.Measurement, reach *witnessReach, log *slog.Logger) {
	if len(ws) == 0 {
		return
	}
	log = log.With("component", "integrity")
	lastErr := map[string]string{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, w := range ws {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			m, err := w.Measure(qctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			reach.set(w.Name(), err)
			if msg := fmt.Sprint(err); err != nil && msg != lastErr[w.Name()] {
				log.Warn("witness unreachable", "witness", w.Name(), "err", err)
				lastErr[w.Name()] = msg
				continue
			} else if err != nil {
				continue
			}
			if lastErr[w.Name()] != "" {
				log.Info("witness answers again", "witness", w.Name())
			}
			lastErr[w.Name()] = ""
			select {
			case out <- m:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// witnessReach is whether each witness answered its latest query
// (timenode_integrity_witness_up), and why not. A witness that stops
// answering (its CA replaced by a reload, a firewall, a server gone)
// takes its evidence out of the drag check without any other sign. Safe
// for concurrent use.
type witnessReach struct {
	mu    sync.Mutex
	names []string // in configuration order
	up    map[string]bool
	fail  map[string]string // witnessFailure of the latest query
}

// list lists the witnesses, each down until it answers.
func (r *witnessReach) list(ws []integrity.Witness) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up == nil {
		r.up, r.fail = map[string]bool{}, map[string]string{}
	}
	for _, w := range ws {
		if _, ok := r.up[w.Name()]; !ok {
			r.names = append(r.names, w.Name())
			r.up[w.Name()] = false
		}
	}
}

// set records the outcome of a listed witness's latest query: up when
// err is nil, else down with err's class.
func (r *witnessReach) set(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.up[name]; ok {
		r.up[name], r.fail[name] = err == nil, witnessFailure(err)
	}
}

// Reach returns every listed witness with its latest outcome.
func (r *witnessReach) Reach() []netsvc.WitnessReach {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]netsvc.WitnessReach, len(r.names))
	for i, n := range r.names {
		out[i] = netsvc.WitnessReach{Name: n, Up: r.up[n], Failure: r.fail[n]}
	}
	return out
}
