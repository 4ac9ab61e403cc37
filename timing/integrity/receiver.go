package integrity

import (
	"math"
	"time"

	"github.com/aunsorm/timenode/timing/leap"
)

// Reasons of the receiver plausibility detector.
const (
	ReasonTooFewSatellites = "too_few_satellites" // a valid fix from fewer than MinUsed satellites
	ReasonCN0Uniform       = "cn0_uniform"        // strong, equal signals: a simulator's signature
	ReasonCN0Drop          = "cn0_drop"           // all signals far below this antenna's usual level: jamming
	ReasonFixLost          = "fix_lost"           // no valid fix for FixLostAfter after having one
	ReasonDOPHigh          = "dop_high"           // geometry too poor to trust
	ReasonTimeMismatch     = "time_mismatch"      // receiver time and PPS-derived time disagree
	ReasonTimeBackwards    = "time_backwards"     // a valid fix earlier than the previous one
	ReasonWeekRollover     = "week_rollover"      // time a multiple of 1024 weeks off
	ReasonTimeBeforeFloor  = "time_before_floor"  // a valid fix dated before NotBefore
	ReasonLeapMismatch     = "leap_mismatch"      // GPS−UTC disagrees with leap-seconds.list
	ReasonTimeStuck        = "time_stuck"         // the same time epoch after epoch
	ReasonSimulator        = "simulator_mode"     // a valid fix from a receiver in simulator mode
)

// ReceiverReasons lists the receiver detector's reasons.
var ReceiverReasons = []string{ReasonTooFewSatellites, ReasonCN0Uniform, ReasonCN0Drop, ReasonFixLost, ReasonDOPHigh,
	ReasonTimeMismatch, ReasonTimeBackwards, ReasonWeekRollover, ReasonTimeBeforeFloor, ReasonLeapMismatch,
	ReasonTimeStuck, ReasonSimulator}

// GPSWeekRollover is the 10-bit GPS week number's period.
const GPSWeekRollover = 1024 * 7 * 24 * time.Hour

// Constellation is one system's satellites in a snapshot.
type Constellation struct {
	System string // "GPS", "GLONASS", "Galileo", "BeiDou", "QZSS", …
	InView int
	Used   int
}

// Snapshot is what the receiver said about one epoch (one second),
// gathered from RMC/ZDA (time, validity), GGA (quality, satellites used,
// HDOP), GSA (fix type, used satellites, PDOP) and GSV (in view, CN0).
type Snapshot struct {
	// At is the local time the epoch was complete (injected clock).
	At time.Time
	// Time is the UTC the receiver names for the epoch; zero if none.
	Time time.Time
	// FixValid: RMC status A or GGA quality 1–5.
	FixValid bool
	// FixDims is the GSA fix type: 0 unknown, 1 none, 2 = 2D, 3 = 3D.
	FixDims int
	// Simulator: RMC mode S or GGA quality 8.
	Simulator bool
	// Satellites per constellation.
	Satellites []Constellation
	// CN0 of every tracked satellite, dB-Hz (untracked ones left out).
	CN0 []float64
	// HDOP and PDOP; 0 if unknown.
	HDOP, PDOP float64
	// LeapSeconds is GPS−UTC as the receiver applies it, if LeapKnown
	// (u-blox NAV-TIMEGPS, some proprietary sentences; NMEA 0183 has
	// no standard field).
	LeapSeconds int
	LeapKnown   bool
	// PPSTime is the node's clock at the PPS edge this epoch labels;
	// zero if unknown. It is the reference for time jumps.
	PPSTime time.Time
}

// Used returns the satellites used over all constellations.
func (s Snapshot) Used() int {
	n := 0
	for _, c := range s.Satellites {
		n += c.Used
	}
	return n
}

// LeapTable gives GPS−UTC in seconds at a UTC instant, from the
// leap-seconds list; ok is false where the table does not know.
type LeapTable interface {
	GPSMinusUTC(utc time.Time) (seconds int, ok bool)
}

// ScheduleTable adapts a parsed leap-seconds.list to LeapTable.
type ScheduleTable struct{ Schedule *leap.Schedule }

// GPSMinusUTC is TAI−UTC minus 19 s (TAI−GPS); unknown before GPS time
// began and past the list's expiry (a leap announced since is unknown).
func (t ScheduleTable) GPSMinusUTC(utc time.Time) (int, bool) {
	if t.Schedule == nil || utc.Before(time.Date(1980, 1, 6, 0, 0, 0, 0, time.UTC)) || t.Schedule.Expired(utc) {
		return 0, false
	}
	tai, _ := t.Schedule.At(utc)
	return tai - 19, true
}

// ReceiverConfig configures a ReceiverDetector. Zero fields take the
// defaults.
type ReceiverConfig struct {
	MinUsed int // default 4: fewer cannot solve for time and 3D position
	// CN0 uniformity: at least UniformMinSats tracked, mean at least
	// UniformMeanDBHz, standard deviation below UniformSpreadDB
	// (defaults 6, 44 dB-Hz, 1.5 dB). Real skies spread 5–10 dB with
	// elevation; a simulator or repeater feeds every channel alike.
	UniformMinSats                   int
	UniformMeanDBHz, UniformSpreadDB float64
	// CN0DropDB below the running mean CN0 of valid fixes alarms
	// (default 10 dB, after CN0Warmup epochs, default 60).
	CN0DropDB float64
	CN0Warmup int
	// FixLostAfter without a valid fix, having had one (default 60 s).
	FixLostAfter time.Duration
	// MaxHDOP and MaxPDOP (defaults 10 and 20).
	MaxHDOP, MaxPDOP float64
	// Persist is how many consecutive epochs too few satellites or a
	// high DOP must last (default 30): satellites set and are blocked
	// for a moment all the time; a spoofer's poor geometry lasts.
	Persist int
	// TimeTolerance between receiver time and PPS time, and for a
	// backward step (default 500 ms: the label is whole seconds).
	TimeTolerance time.Duration
	// RolloverTolerance around a multiple of 1024 weeks (default 2 days).
	RolloverTolerance time.Duration
	// StuckAfter epochs with the same time spanning at least
	// StuckAfter−1 seconds of local time (default 3).
	StuckAfter int
	// NotBefore is the earliest believable date (the firmware's build
	// date, the leap list's update); zero disables the check.
	NotBefore time.Time
	// Leap is the leap-seconds table; nil disables the check.
	Leap LeapTable
}

func (c ReceiverConfig) withDefaults() ReceiverConfig {
	if c.MinUsed <= 0 {
		c.MinUsed = 4
	}
	if c.UniformMinSats <= 0 {
		c.UniformMinSats = 6
	}
	if c.UniformMeanDBHz <= 0 {
		c.UniformMeanDBHz = 44
	}
	if c.UniformSpreadDB <= 0 {
		c.UniformSpreadDB = 1.5
	}
	if c.CN0DropDB <= 0 {
		c.CN0DropDB = 10
	}
	if c.CN0Warmup <= 0 {
		c.CN0Warmup = 60
	}
	if c.FixLostAfter <= 0 {
		c.FixLostAfter = 60 * time.Second
	}
	if c.MaxHDOP <= 0 {
		c.MaxHDOP = 10
	}
	if c.MaxPDOP <= 0 {
		c.MaxPDOP = 20
	}
	if c.Persist <= 0 {
		c.Persist = 30
	}
	if c.TimeTolerance <= 0 {
		c.TimeTolerance = 500 * time.Millisecond
	}
	if c.RolloverTolerance <= 0 {
		c.RolloverTolerance = 48 * time.Hour
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = 3
	}
	return c
}

// ReceiverDetector judges receiver snapshots for plausibility.
type ReceiverDetector struct {
	cfg ReceiverConfig

	hadFix             bool
	lastFixAt          time.Time
	lastValid          time.Time // receiver time of the last valid fix
	lastValidAt        time.Time
	cn0Mean            float64
	cn0N               int
	stuckTime, stuckAt time.Time
	stuckRun           int
	fewRun, dopRun     int
}

// NewReceiverDetector returns a detector.
func NewReceiverDetector(cfg ReceiverConfig) *ReceiverDetector {
	return &ReceiverDetector{cfg: cfg.withDefaults()}
}

func (d *ReceiverDetector) ev(s Snapshot, reason string, level Level, values map[string]float64) Evidence {
	return Evidence{At: s.At, Detector: DetectorReceiver, Reason: reason, Level: level, Values: values}
}

// Observe judges one snapshot.
func (d *ReceiverDetector) Observe(s Snapshot) []Evidence {
	var evs []Evidence
	add := func(reason string, level Level, values map[string]float64) {
		evs = append(evs, d.ev(s, reason, level, values))
	}
	mean, sd := meanSD(s.CN0)

	if s.FixValid {
		if s.Simulator {
			add(ReasonSimulator, LevelUntrusted, nil)
		}
		// A 2D fix (altitude held) needs one satellite fewer.
		need := d.cfg.MinUsed
		if s.FixDims == 2 {
			need--
		}
		if used := s.Used(); used > 0 && used < need {
			d.fewRun++
		} else {
			d.fewRun = 0
		}
		if d.fewRun >= d.cfg.Persist {
			add(ReasonTooFewSatellites, LevelSuspect, map[string]float64{"used": float64(s.Used()), "min": float64(need), "epochs": float64(d.fewRun)})
		}
		if s.HDOP > d.cfg.MaxHDOP || s.PDOP > d.cfg.MaxPDOP {
			d.dopRun++
		} else {
			d.dopRun = 0
		}
		if d.dopRun >= d.cfg.Persist {
			add(ReasonDOPHigh, LevelSuspect, map[string]float64{"hdop": s.HDOP, "pdop": s.PDOP, "epochs": float64(d.dopRun)})
		}
	} else if d.hadFix && s.At.Sub(d.lastFixAt) >= d.cfg.FixLostAfter {
		add(ReasonFixLost, LevelSuspect, map[string]float64{"since_fix_s": s.At.Sub(d.lastFixAt).Seconds()})
	}

	if len(s.CN0) >= d.cfg.UniformMinSats && mean >= d.cfg.UniformMeanDBHz && sd < d.cfg.UniformSpreadDB {
		add(ReasonCN0Uniform, LevelSuspect, map[string]float64{"cn0_mean_dbhz": mean, "cn0_sd_db": sd, "satellites": float64(len(s.CN0))})
	}
	if len(s.CN0) > 0 && d.cn0N >= d.cfg.CN0Warmup && mean < d.cn0Mean-d.cfg.CN0DropDB {
		add(ReasonCN0Drop, LevelSuspect, map[string]float64{"cn0_mean_dbhz": mean, "usual_dbhz": d.cn0Mean})
	} else if s.FixValid && len(s.CN0) > 0 {
		// The usual level learns only from good epochs, slowly (1/256),
		// so that a jammer ramping up cannot teach it.
		d.cn0N++
		a := math.Max(1/float64(d.cn0N), 1.0/256)
		d.cn0Mean += a * (mean - d.cn0Mean)
	}

	if !s.Time.IsZero() {
		evs = append(evs, d.checkTime(s)...)
	}
	if s.FixValid {
		d.hadFix, d.lastFixAt = true, s.At
	}
	return evs
}

// checkTime runs the time checks against the best reference there is:
// the PPS-derived time, else the last valid fix carried forward by local
// time (good to seconds over days, enough for rollover).
func (d *ReceiverDetector) checkTime(s Snapshot) []Evidence {
	var evs []Evidence
	add := func(reason string, level Level, values map[string]float64) {
		evs = append(evs, d.ev(s, reason, level, values))
	}
	ref, haveRef := s.PPSTime, !s.PPSTime.IsZero()
	if !haveRef && !d.lastValid.IsZero() {
		ref, haveRef = d.lastValid.Add(s.At.Sub(d.lastValidAt)), true
	}
	rolled := false
	if haveRef {
		diff := s.Time.Sub(ref)
		k := math.Round(float64(diff) / float64(GPSWeekRollover))
		if k != 0 && absDur(diff-time.Duration(k)*GPSWeekRollover) <= d.cfg.RolloverTolerance {
			rolled = true
			add(ReasonWeekRollover, LevelUntrusted, map[string]float64{"weeks": k * 1024, "offset_s": diff.Seconds()})
		} else if !s.PPSTime.IsZero() && s.FixValid && absDur(diff) > d.cfg.TimeTolerance {
			add(ReasonTimeMismatch, LevelUntrusted, map[string]float64{"offset_s": diff.Seconds()})
		}
	}
	if !s.FixValid {
		return evs
	}
	if !rolled && !d.cfg.NotBefore.IsZero() && s.Time.Before(d.cfg.NotBefore) {
		add(ReasonTimeBeforeFloor, LevelUntrusted, map[string]float64{"before_s": d.cfg.NotBefore.Sub(s.Time).Seconds()})
	}
	if !d.lastValid.IsZero() && d.lastValid.Sub(s.Time) > d.cfg.TimeTolerance {
		add(ReasonTimeBackwards, LevelSuspect, map[string]float64{"step_s": s.Time.Sub(d.lastValid).Seconds()})
	}
	if d.cfg.Leap != nil && s.LeapKnown {
		want, ok := d.cfg.Leap.GPSMinusUTC(s.Time)
		// A receiver switches at the leap itself; allow the seconds
		// around a boundary to carry either value.
		want2, ok2 := d.cfg.Leap.GPSMinusUTC(s.Time.Add(-2 * time.Second))
		if ok && s.LeapSeconds != want && (!ok2 || s.LeapSeconds != want2) {
			add(ReasonLeapMismatch, LevelUntrusted, map[string]float64{"receiver_s": float64(s.LeapSeconds), "list_s": float64(want)})
		}
	}
	if s.Time.Equal(d.stuckTime) {
		d.stuckRun++
		if d.stuckRun >= d.cfg.StuckAfter && s.At.Sub(d.stuckAt) >= time.Duration(d.cfg.StuckAfter-1)*time.Second {
			add(ReasonTimeStuck, LevelUntrusted, map[string]float64{"epochs": float64(d.stuckRun), "stuck_s": s.At.Sub(d.stuckAt).Seconds()})
		}
	} else {
		d.stuckTime, d.stuckAt, d.stuckRun = s.Time, s.At, 1
	}
	if !rolled {
		d.lastValid, d.lastValidAt = s.Time, s.At
	}
	return evs
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func meanSD(xs []float64) (mean, sd float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)))
}
