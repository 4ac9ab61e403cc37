package timing

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/timing/bound"
	"github.com/aunsorm/timenode/timing/leap"
	"github.com/aunsorm/timenode/timing/servo"
)

// Config is the discipline's policy.
type Config struct {
	// Stratum claimed while servable (NTP_STRATUM, default 1).
	Stratum uint8
	// StepThreshold: offsets above it are stepped before the first lock
	// (128 ms default); after it the servo's policy refuses them and the
	// node stops serving, until a few consistent ones make it re-acquire.
	StepThreshold time.Duration
	// LockThreshold and LockSamples: LOCKED after this many consecutive
	// offsets within the threshold; UnlockSamples consecutive accepted
	// offsets above UnlockThreshold drop back to ACQUIRING (hysteresis).
	// One late sample that the spike filter let through is carried by the
	// error bound; it must not take a locked node out of service.
	LockThreshold   time.Duration
	LockSamples     int
	UnlockThreshold time.Duration
	UnlockSamples   int
	// HoldoverAfter without an accepted sample moves LOCKED to HOLDOVER.
	HoldoverAfter time.Duration
	// MaxHoldoverBound: past this error bound the node is UNSYNCHRONIZED
	// and stops claiming its stratum.
	MaxHoldoverBound time.Duration
	// MinNMEADelay and MaxNMEADelay bound when, after its edge, a second's
	// sentences may start arriving; outside the window the label is
	// ambiguous and the pulse is refused.
	MinNMEADelay, MaxNMEADelay time.Duration
	// NMEAOnlyStratum, when not 0, lets a node that lost its PPS but
	// keeps a valid fix serve NMEA-only time at this stratum, with a bound
	// of milliseconds, as long as that bound stays within NMEAOnlyMaxBound.
	NMEAOnlyStratum  uint8
	NMEAOnlyMaxBound time.Duration
	// Leap is the leap second schedule (leap-seconds.list); nil means no
	// leap seconds are announced and TAI-UTC is unknown.
	Leap *leap.Schedule
	// Stability, when not nil, is what an earlier run measured of this
	// oscillator (Status.Allan): the bound starts from it instead of
	// measuring the longest averaging times afresh
	// (bound.Estimator.SeedStability). Sums that do not validate are
	// logged and ignored.
	Stability *bound.Stability
	// FrequencyHistory, when not nil, is the oscillator's frequency
	// history an earlier run kept (Status.FrequencyHistory's Blocks):
	// the holdover bound is limited by its range from the start
	// (bound.Estimator.SeedFrequencyHistory). A history that does not
	// validate is logged and ignored.
	FrequencyHistory []bound.FrequencyBlock
	// ServoMemory, when not nil, is what an earlier run's servo learnt
	// (Status.ServoMemory): its bank starts from it
	// (servo.Kalman.Seed). A memory the servo refuses is logged and
	// ignored.
	ServoMemory *servo.Memory
	// KeptFrequency, when not nil, is the oscillator's free-running
	// frequency an earlier run measured (from its ServoMemory) and the
	// clock it measured it on: the servo is offered it only on that same
	// clock (clock.Identified: the kernel's, within one boot), with its
	// variance grown over the gap since, and judges it against its own
	// samples (servo.Servo.SetFrequencyPrior).
	KeptFrequency *KeptFrequency
	// Servo, when not nil, makes the control law: the simulation bench
	// runs its baseline and its oracle through the same discipline. Nil
	// is the adaptive Kalman servo the appliance ships.
	Servo func() servo.Algorithm
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Stratum:          1,
		StepThreshold:    128 * time.Millisecond,
		LockThreshold:    20 * time.Microsecond,
		LockSamples:      5,
		UnlockThreshold:  200 * time.Microsecond,
		UnlockSamples:    3,
		HoldoverAfter:    2500 * time.Millisecond,
		MaxHoldoverBound: time.Millisecond,
		MinNMEADelay:     20 * time.Millisecond,
		MaxNMEADelay:     980 * time.Millisecond,
		NMEAOnlyMaxBound: 50 * time.Millisecond,
	}
}

// Rejection reasons, used as metric labels.
const (
	RejectNoFix     = "no_fix"
	RejectNoPulse   = "no_pulse"
	RejectAmbiguous = "ambiguous"
	RejectDisagree  = "disagrees_with_clock"
	RejectDuplicate = "duplicate_label"
	RejectJump      = "label_discontinuity"
	RejectSpike     = "latency_spike"
	RejectMislabel  = "prediction_refuted"
)

// maxUnconfirmed is how many edges may be labelled ahead of their NMEA.
const maxUnconfirmed = 3

// Discipline steers a clock from PPS edges labelled by NMEA. Its methods
// other than Status must be called from one goroutine (Run does that).
type Discipline struct {
	cfg   Config
	clk   clock.Steerable
	servo *servo.Servo
	est   *bound.Estimator
	preds []bound.Prediction // the servo's, for est (reused)
	log   *slog.Logger
	// stepNs is the sum of the steps applied: subtracted from local
	// timestamps it gives the servo and the estimator a timebase that
	// our own steps do not move.
	stepNs int64

	status   atomic.Pointer[Status]
	leap     atomic.Pointer[leap.Schedule] // cfg.Leap until SetLeap replaces it
	rejected [8]atomic.Uint64
	beat     atomic.Int64 // Unix ns of the last tick handled by Run

	pulses    []pps.Pulse // recent unlabelled edges, oldest first
	lastLabel time.Time
	lastEdge  time.Time // local time of the edge lastLabel named
	breaks    int       // consecutive samples that broke label continuity
	// Edges labelled by continuity at arrival, waiting for their NMEA to
	// confirm the label; after maxUnconfirmed of them the discipline stops
	// predicting and waits for NMEA again.
	awaiting   []labelled
	fixValid   bool       // the last fix was valid
	delay      delayStats // this receiver's NMEA delay after the edge
	nmea       nmeaOnly   // the fallback when PPS is lost
	confirmd   time.Time  // the last label a fix confirmed
	cur        Status
	inLock     int // consecutive samples within LockThreshold
	outOfLock  int // consecutive accepted samples above UnlockThreshold
	everLock   bool
	recovering bool // in HOLDOVER with samples again, re-acquiring
	// unlockedAt is when the clock last left LOCKED for ACQUIRING;
	// withheld is set by the integrity guard while it keeps GNSS from
	// the discipline (SetWithheld).
	unlockedAt time.Time
	withheld   atomic.Bool
	offsets    window
	freqs      window
	// appliedAt is the clock's time when the servo's last output was
	// applied; holding: the clock runs at the servo's holdover frequency
	// since (servoHoldAfter); tempInput: the servo uses SetTemperature.
	appliedAt time.Time
	holding   bool
	tempInput bool

	// history is the servo's and the estimator's state every
	// checkpointEvery of samples, oldest first, to hold over from the
	// state before a GNSS the integrity guard found suspect since
	// suspectSince (Unix ns, 0: none; SetSuspectSince). holdAdjust is
	// then added to the servo's holdover frequency, until the next
	// sample.
	history      []checkpoint
	suspectSince atomic.Int64
	holdAdjust   float64
}

// New returns a discipline for clk. The servo starts from the clock's
// current frequency correction.
func New(cfg Config, clk clock.Steerable, log *slog.Logger) *Discipline {
	f, err := clk.Frequency()
	if err != nil {
		f = 0
	}
	sc := servo.DefaultConfig()
	sc.StepThresholdNs = float64(cfg.StepThreshold)
	var alg servo.Algorithm
	if cfg.Servo != nil {
		alg = cfg.Servo()
	} else {
		alg = servo.NewKalman(servo.DefaultKalmanConfig())
	}
	d := &Discipline{
		cfg:     cfg,
		clk:     clk,
		servo:   servo.New(sc, alg, f),
		est:     bound.NewEstimator(bound.DefaultConfig()),
		log:     log.With("component", "timing"),
		offsets: newWindow(16),
	}
	if cfg.Stability != nil {
		if err := d.est.SeedStability(*cfg.Stability); err != nil {
			d.log.Warn("kept oscillator stability ignored", "err", err)
		}
	}
	if cfg.FrequencyHistory != nil {
		if err := d.est.SeedFrequencyHistory(cfg.FrequencyHistory); err != nil {
			d.log.Warn("kept frequency history ignored", "err", err)
		}
	}
	seeded := false
	if cfg.ServoMemory != nil {
		if err := d.servo.Seed(*cfg.ServoMemory); err != nil {
			d.log.Warn("kept servo memory ignored", "err", err)
		} else {
			seeded = true
		}
	}
	d.leap.Store(cfg.Leap)
	d.cur = Status{State: Freerun, Stratum: 16, FrequencyPPB: f, MaxBound: cfg.MaxHoldoverBound, Reason: "waiting for GNSS"}
	d.cur.ClockID = d.clockID()
	// The kept frequency goes with the memory's temperature coefficient:
	// without the one, the other is not this servo's to start from.
	if cfg.KeptFrequency != nil && seeded {
		d.offerFrequency(*cfg.KeptFrequency)
	}
	d.publish()
	return d
}

// Status returns the latest published snapshot. Safe for concurrent use.
func (d *Discipline) Status() *Status { return d.status.Load() }

// Rejected returns how many pulses were refused for reason (one of the
// Reject* constants).
func (d *Discipline) Rejected(reason string) uint64 {
	if i := reasonIndex(reason); i >= 0 {
		return d.rejected[i].Load()
	}
	return 0
}

// RejectReasons lists the reasons Rejected knows.
func RejectReasons() []string {
	return []string{RejectNoFix, RejectNoPulse, RejectAmbiguous, RejectDisagree, RejectDuplicate, RejectJump, RejectSpike, RejectMislabel}
}

func reasonIndex(r string) int {
	for i, n := range RejectReasons() {
		if n == r {
			return i
		}
	}
	return -1
}

func (d *Discipline) reject(reason string, attrs ...any) {
	d.rejected[reasonIndex(reason)].Add(1)
	d.log.Debug("sample rejected", append([]any{"reason", reason}, attrs...)...)
}

// Run consumes pulses and fixes until ctx is done, and re-evaluates the
// state every tick so holdover is entered without new input. When ctx is
// done it leaves the clock at the servo's frequency estimate (stop).
func (d *Discipline) Run(ctx context.Context, pulses <-chan pps.Pulse, fixes <-chan gnss.Fix, tick <-chan time.Time) error {
	for {
		select {
		case <-ctx.Done():
			d.stop()
			return nil
		case p := <-pulses:
			d.HandlePulse(p)
		case f := <-fixes:
			d.HandleFix(f)
		case t := <-tick:
			d.beat.Store(t.UnixNano())
			d.Tick()
		}
	}
}

// LastTick returns the time of the last tick Run handled: a liveness signal
// for the service watchdog (the loop is stuck if it stops advancing).
func (d *Discipline) LastTick() time.Time { return time.Unix(0, d.beat.Load()) }

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
