package simbench

import (
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/timing"
	"github.com/aunsorm/timenode/timing/bound"
	"github.com/aunsorm/timenode/timing/internal/simclock"
	"github.com/aunsorm/timenode/timing/servo"
)

// Kind names a servo under test.
type Kind string

// The servos the bench compares.
const (
	Ours       Kind = "kalman (ours)"
	OursNoTemp Kind = "kalman (ours), no temp. sensor"
	PI         Kind = "pi (linuxptp)"
	Oracle     Kind = "oracle kalman"
)

// Kinds lists the servos in table order.
var Kinds = []Kind{Ours, OursNoTemp, PI, Oracle}

// LockThresholdNs is the |offset| below which the clock counts as locked.
const LockThresholdNs = 10e3

// postOutageSettleS is excluded from steady-state statistics after an outage.
const postOutageSettleS = 600

// Result is what one servo achieved on one scenario. Times are seconds;
// -1 means never.
type Result struct {
	Kind       Kind
	LockS      int     // time to lock from the first pulse
	RelockS    int     // time to lock again after the first outage ends (-1 if none or never)
	RMSNs      float64 // steady-state RMS |offset|
	P99Ns      float64 // steady-state 99th percentile |offset|
	Hold10mNs  float64 // |offset| 10 min into the first outage
	Hold1hNs   float64 // |offset| at the end of a 1 h first outage
	Coverage   float64 // share of seconds with |offset| ≤ published bound
	MedianRate float64 // median of bound / |offset|
	// The same while the discipline says LOCKED, and in HOLDOVER (NaN if
	// never in that state).
	CoverageLocked, RateLocked     float64
	CoverageHoldover, RateHoldover float64
	Rejected                       int // samples the spike filter discarded
	Missed                         int // spikes the servo accepted (after its start)
	Steps                          int
	Switches                       int // changes of our servo's selected filter
}

// newServo builds the servo of a kind for a scenario.
func newServo(kind Kind, sc Scenario) *servo.Servo {
	switch kind {
	case PI:
		return servo.New(servo.DefaultConfig(), servo.NewPI(), 0)
	case Oracle:
		r, qwf, qrw := sc.oracleNoise()
		return servo.New(servo.DefaultConfig(), servo.NewKalman(servo.KalmanConfig{
			Noise: &bound.Noise{R: r, Qwf: qwf, Qrw: qrw}}), 0)
	default:
		return servo.New(servo.DefaultConfig(), servo.NewKalman(servo.DefaultKalmanConfig()), 0)
	}
}

// Trace is the per-second record of a run, for tests and golden files.
type Trace struct {
	OffsetNs []float64      // true offset at each second, before its pulse
	BoundNs  []float64      // bound published at that second (+Inf before any sample)
	State    []timing.State // the discipline's state at that second
}

// simEpoch is true time zero of every run: the UTC the first pulse names.
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// newDiscipline builds the discipline the daemon runs, with the control
// law of kind, on clk; after a restart, prev is the old one's last
// status, and the new one starts from what sc keeps of it. For our servo it also returns the Kalman law
// inside, for diagnostics.
func newDiscipline(kind Kind, sc Scenario, clk *simclock.Clock, prev *timing.Status) (*timing.Discipline, *servo.Kalman) {
	cfg := timing.DefaultConfig()
	if prev != nil && sc.KeepStability {
		cfg.Stability = &prev.Allan
	}
	if prev != nil && sc.KeepServo {
		// What the daemon keeps in its state directory, saved as it
		// stopped and read back on the same clock.
		timing.NewKept(prev, clk.Now()).Seed(&cfg)
	}
	var ours *servo.Kalman
	switch kind {
	case Ours, OursNoTemp:
		cfg.Servo = func() servo.Algorithm {
			ours = servo.NewKalman(servo.DefaultKalmanConfig())
			return ours
		}
	case PI:
		cfg.Servo = func() servo.Algorithm { return servo.NewPI() }
	case Oracle:
		r, qwf, qrw := sc.oracleNoise()
		cfg.Servo = func() servo.Algorithm {
			return servo.NewKalman(servo.KalmanConfig{Noise: &bound.Noise{R: r, Qwf: qwf, Qrw: qrw}})
		}
	}
	return timing.New(cfg, clk, slog.New(slog.DiscardHandler)), ours
}

// Run simulates one scenario with one servo inside the shipped
// timing.Discipline: each second the PPS edge is timestamped on the
// simulated clock, the NMEA naming it follows, and the daemon's ticks run
// the state machine; labelling, policy, holdover and the published bound
// are the appliance's. During an outage the receiver reports no valid fix.
// The oracle is told which pulses are spikes and never sees them; the
// others must find out. Every servo but OursNoTemp and PI gets the
// temperature sensor's reading each second.
func Run(sc Scenario, kind Kind) (Result, Trace) {
	w := newWorld(sc)
	clk := simclock.New(simEpoch, sc.InitPhaseNs)
	d, ours := newDiscipline(kind, sc, clk, nil)
	res := Result{Kind: kind, LockS: -1, RelockS: -1, Hold10mNs: math.NaN(), Hold1hNs: math.NaN()}
	tr := Trace{OffsetNs: make([]float64, sc.DurationS), BoundNs: make([]float64, sc.DurationS),
		State: make([]timing.State, sc.DurationS)}
	start := servo.DefaultConfig().StartSamples
	var steps, samples uint64
	sinceStep := 0 // samples accepted since the last step: the start's are outvoted, not missed
	for k := range sc.DurationS {
		edge := int64(k) * 1e9
		clk.Advance(edge)
		if k == sc.RestartS && k > 0 {
			d, ours = newDiscipline(kind, sc, clk, d.Status())
		}
		freq, errNs, spike, present := w.second(k)
		clk.Osc = freq
		tr.OffsetNs[k] = clk.X
		st := d.Status()
		tr.State[k] = st.State
		tr.BoundNs[k] = math.Inf(1)
		if !st.BoundAsOf.IsZero() {
			if b := st.BoundAt(clk.Now()); b != math.MaxInt64 {
				tr.BoundNs[k] = float64(b)
			}
		}
		if kind == Ours || kind == Oracle {
			d.SetTemperature(sc.Osc.Temperature(float64(k)))
		}
		sky := present
		if kind == Oracle && spike {
			present = false
		}
		if present {
			ts := clk.Now().Add(time.Duration(math.Round(errNs)))
			d.HandlePulse(pps.Pulse{Local: ts, Seq: uint64(k), Quality: pps.QualitySimulated})
		}
		clk.Advance(edge + int64(simclock.NMEADelay))
		d.HandleFix(gnss.Fix{UTC: simEpoch.Add(time.Duration(k) * time.Second), Valid: sky,
			Received: clk.Now(), Satellites: 8})
		if st := d.Status(); st.Steps != steps || st.Samples != samples {
			if st.Steps != steps {
				steps, sinceStep = st.Steps, 0
			}
			if st.Samples != samples {
				sinceStep++
				if spike && sinceStep > start {
					res.Missed++
				}
			}
			samples = st.Samples
		}
		clk.Ticks(edge, d.Tick)
	}
	clk.Advance(int64(sc.DurationS) * 1e9)
	res.Rejected = int(d.Rejected(timing.RejectSpike))
	res.Steps = int(d.Status().Steps)
	if ours != nil {
		res.Switches = ours.Switches()
	}
	res.fill(sc, tr)
	return res, tr
}

// fill derives the table's figures from the trace.
func (r *Result) fill(sc Scenario, tr Trace) {
	end := sc.DurationS
	if len(sc.Outages) > 0 {
		end = sc.Outages[0].StartS
	}
	r.LockS = lockTime(tr.OffsetNs, 0, end)
	inOutage := make([]bool, sc.DurationS)
	for _, o := range sc.Outages {
		for k := o.StartS; k < min(o.StartS+o.DurationS+postOutageSettleS, sc.DurationS); k++ {
			inOutage[k] = true
		}
	}
	if len(sc.Outages) > 0 {
		o := sc.Outages[0]
		if t := o.StartS + 600; t < sc.DurationS {
			r.Hold10mNs = math.Abs(tr.OffsetNs[t])
		}
		if t := o.StartS + 3600; t < sc.DurationS {
			r.Hold1hNs = math.Abs(tr.OffsetNs[t])
		} else if o.DurationS >= 3600 && o.StartS+3600 == sc.DurationS {
			r.Hold1hNs = math.Abs(tr.OffsetNs[sc.DurationS-1])
		}
		if after := o.StartS + o.DurationS; after < sc.DurationS {
			stop := sc.DurationS
			if len(sc.Outages) > 1 {
				stop = sc.Outages[1].StartS
			}
			if l := lockTime(tr.OffsetNs, after, stop); l >= 0 {
				r.RelockS = l - after
			}
		}
	}
	var abs []float64
	sum := 0.0
	for k := sc.SettleS; k < sc.DurationS; k++ {
		if inOutage[k] {
			continue
		}
		a := math.Abs(tr.OffsetNs[k])
		abs = append(abs, a)
		sum += a * a
	}
	if len(abs) > 0 {
		slices.Sort(abs)
		r.RMSNs = math.Sqrt(sum / float64(len(abs)))
		r.P99Ns = abs[int(0.99*float64(len(abs)-1))]
	}
	r.Coverage, r.MedianRate = Coverage(tr, 0, sc.DurationS)
	r.CoverageLocked, r.RateLocked = coverageIn(tr, timing.Locked)
	r.CoverageHoldover, r.RateHoldover = coverageIn(tr, timing.Holdover)
}

// coverageIn is Coverage over the seconds the discipline spent in state
// (NaN, NaN if none).
func coverageIn(tr Trace, state timing.State) (coverage, medianRatio float64) {
	var sub Trace
	for k, s := range tr.State {
		if s == state {
			sub.OffsetNs = append(sub.OffsetNs, tr.OffsetNs[k])
			sub.BoundNs = append(sub.BoundNs, tr.BoundNs[k])
		}
	}
	if len(sub.OffsetNs) == 0 {
		return math.NaN(), math.NaN()
	}
	return Coverage(sub, 0, len(sub.OffsetNs))
}

// lockTime returns the first second in [from, to) after which |offset|
// stays below LockThresholdNs until to, or -1.
func lockTime(off []float64, from, to int) int {
	lock := -1
	for k := to - 1; k >= from; k-- {
		if math.Abs(off[k]) >= LockThresholdNs {
			break
		}
		lock = k
	}
	if lock < 0 || to-lock < 60 {
		return -1
	}
	return lock
}

// Coverage returns, over seconds [from, to) with a finite bound, the share
// where |offset| ≤ bound and the median ratio bound/|offset|.
func Coverage(tr Trace, from, to int) (coverage, medianRatio float64) {
	var ratios []float64
	in, n := 0, 0
	for k := from; k < to; k++ {
		b := tr.BoundNs[k]
		if math.IsInf(b, 1) {
			continue
		}
		n++
		a := math.Abs(tr.OffsetNs[k])
		if a <= b {
			in++
		}
		if a > 0 {
			ratios = append(ratios, b/a)
		}
	}
	if n == 0 {
		return 0, 0
	}
	slices.Sort(ratios)
	if len(ratios) > 0 {
		medianRatio = ratios[len(ratios)/2]
	}
	return float64(in) / float64(n), medianRatio
}
