package timing

import (
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/timing/leap"
)

var start = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// bench is a deterministic world: a manual reference clock (true time),
// a simulated oscillator, and a discipline fed one pulse and one fix per
// true second.
type bench struct {
	ref   *clocktest.Manual
	osc   *clocktest.Oscillator
	d     *Discipline
	rng   *rand.Rand
	noise time.Duration
	delay time.Duration
	sec   int
	shift time.Duration // added to every label: a receiver naming the wrong second
	kick  time.Duration // added to the next pulse's timestamp only
}

func newBench(t *testing.T, osc clocktest.OscillatorConfig, noise time.Duration) *bench {
	t.Helper()
	return newBenchConfig(t, DefaultConfig(), osc, noise)
}

func newBenchConfig(t *testing.T, cfg Config, osc clocktest.OscillatorConfig, noise time.Duration) *bench {
	t.Helper()
	ref := clocktest.NewManual(start)
	o := clocktest.NewOscillator(ref, osc)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &bench{ref: ref, osc: o, d: New(cfg, o, log), rng: rand.New(rand.NewPCG(1, 2)),
		noise: noise, delay: 300 * time.Millisecond}
}

// lockedBench is a bench on a 3 ppm oscillator starting offset off,
// with 1 µs timestamp noise, run clean for secs seconds, which must
// leave it LOCKED.
func lockedBench(t *testing.T, offset time.Duration, secs int) *bench {
	t.Helper()
	b := newBench(t, clocktest.OscillatorConfig{InitialOffset: offset, FrequencyErrorPPB: 3000, Seed: 5}, time.Microsecond)
	for range secs {
		b.second(true, true, true)
	}
	if s := b.d.Status().State; s != Locked {
		t.Fatalf("state %v after %d s clean, want LOCKED", s, secs)
	}
	return b
}

// second runs one true second: edge at T, fix for T after the delay.
func (b *bench) second(pulse, fix, valid bool) {
	b.sec++
	T := start.Add(time.Duration(b.sec) * time.Second)
	b.ref.Set(T)
	if pulse {
		ts := b.osc.LocalAt(T).Add(time.Duration(b.rng.NormFloat64()*float64(b.noise)) + b.kick)
		b.kick = 0
		b.d.HandlePulse(pps.Pulse{Local: ts, Seq: uint64(b.sec), Quality: pps.QualitySimulated})
	}
	b.ref.Set(T.Add(b.delay))
	if fix {
		b.d.HandleFix(gnss.Fix{UTC: T.Add(b.shift), Valid: valid, Received: b.osc.Now()})
	}
	b.ref.Set(T.Add(900 * time.Millisecond))
	b.d.Tick()
}

func TestLocksFromLargeOffsetAndFrequencyError(t *testing.T) {
	tests := []struct {
		name   string
		offset time.Duration
		ppb    float64
	}{
		{"step then lock", 300 * time.Millisecond, 12000},
		{"slew small offset", 40 * time.Microsecond, -3000},
		{"200 ppm", -500 * time.Millisecond, 200000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, clocktest.OscillatorConfig{InitialOffset: tc.offset, FrequencyErrorPPB: tc.ppb, WanderPPB: 0.5, Seed: 3}, time.Microsecond)
			lockedAt := -1
			for i := 0; i < 120; i++ {
				b.second(true, true, true)
				if lockedAt < 0 && b.d.Status().State == Locked {
					lockedAt = i
				}
			}
			st := b.d.Status()
			if st.State != Locked || lockedAt < 0 {
				t.Fatalf("state %v after 120 s (reason %q), want LOCKED", st.State, st.Reason)
			}
			if st.Stratum != 1 {
				t.Fatalf("stratum %d while locked, want 1", st.Stratum)
			}
			trueErr := b.osc.TrueOffset()
			if abs(trueErr) > 10*time.Microsecond {
				t.Fatalf("true error %v after lock, want within 10µs", trueErr)
			}
			if bound := st.BoundAt(b.osc.Now()); abs(trueErr) > bound {
				t.Fatalf("true error %v outside published bound %v", trueErr, bound)
			}
			t.Logf("locked after %d s, true error %v, bound %v, steps %d", lockedAt, trueErr, st.BoundAt(b.osc.Now()), st.Steps)
		})
	}
}

func TestHoldoverThenUnsynchronizedThenRecovery(t *testing.T) {
	b := newBench(t, clocktest.OscillatorConfig{InitialOffset: 2 * time.Millisecond, FrequencyErrorPPB: 5000, WanderPPB: 2, Seed: 9}, 2*time.Microsecond)
	for i := 0; i < 60; i++ {
		b.second(true, true, true)
	}
	if s := b.d.Status().State; s != Locked {
		t.Fatalf("state %v, want LOCKED before outage", s)
	}
	b.second(false, true, true) // NMEA but no PPS
	b.second(false, true, true)
	b.second(false, false, false)
	if s := b.d.Status(); s.State != Holdover || s.Stratum != 1 {
		t.Fatalf("state %v stratum %d after 3 s outage, want HOLDOVER stratum 1", s.State, s.Stratum)
	}
	if got := b.d.Rejected(RejectNoPulse); got != 2 {
		t.Fatalf("no_pulse rejections %d, want 2", got)
	}
	var unsyncAt int
	for i := 0; i < 20000 && b.d.Status().State == Holdover; i++ {
		b.second(false, false, false)
		unsyncAt = i
		if s := b.d.Status(); abs(b.osc.TrueOffset()) > s.BoundAt(b.osc.Now()) {
			t.Fatalf("after %d s of holdover true error %v exceeds bound %v", i, b.osc.TrueOffset(), s.BoundAt(b.osc.Now()))
		}
	}
	if s := b.d.Status(); s.State != Unsynchronized || s.Stratum != 16 {
		t.Fatalf("state %v stratum %d, want UNSYNCHRONIZED stratum 16", s.State, s.Stratum)
	}
	t.Logf("unsynchronized after %d s of holdover", unsyncAt)
	for i := 0; i < 60; i++ {
		b.second(true, true, true)
	}
	if s := b.d.Status().State; s != Locked {
		t.Fatalf("state %v after the reference returned, want LOCKED", s)
	}
}

func TestRejections(t *testing.T) {
	b := newBench(t, clocktest.OscillatorConfig{}, 0)
	for i := 0; i < 3; i++ {
		b.second(true, true, false)
	}
	if got := b.d.Rejected(RejectNoFix); got != 3 {
		t.Fatalf("no_fix %d, want 3", got)
	}
	if s := b.d.Status(); s.State != Freerun || s.Stratum != 16 {
		t.Fatalf("without a fix: %v stratum %d, want FREERUN 16", s.State, s.Stratum)
	}
	b.delay = 5 * time.Millisecond // NMEA right on the edge: which second?
	b.second(true, true, true)
	if got := b.d.Rejected(RejectAmbiguous); got != 1 {
		t.Fatalf("ambiguous %d, want 1", got)
	}
	b.delay = 300 * time.Millisecond
	b.second(true, true, true)
	// The same label again (a receiver repeating a second) is refused.
	T := start.Add(time.Duration(b.sec) * time.Second)
	b.d.HandlePulse(pps.Pulse{Local: b.osc.LocalAt(T.Add(time.Second)), Quality: pps.QualitySimulated})
	b.d.HandleFix(gnss.Fix{UTC: T, Valid: true, Received: b.osc.LocalAt(T.Add(1300 * time.Millisecond))})
	if got := b.d.Rejected(RejectDuplicate); got != 1 {
		t.Fatalf("duplicate %d, want 1", got)
	}
}

func TestLateNMEADoesNotMislabelByASecond(t *testing.T) {
	b := newBench(t, clocktest.OscillatorConfig{InitialOffset: 300 * time.Millisecond, FrequencyErrorPPB: 8000}, time.Microsecond)
	for i := 0; i < 5; i++ {
		b.second(true, true, true)
	}
	// Second N's sentences read so late (a stalled reader) that their
	// timestamp falls after edge N+1: pairing by arrival would call edge
	// N+1 "N". Labels given by continuity at the edge are not fooled.
	b.sec++
	T := start.Add(time.Duration(b.sec) * time.Second)
	b.ref.Set(T)
	b.d.HandlePulse(pps.Pulse{Local: b.osc.LocalAt(T), Quality: pps.QualitySimulated})
	b.ref.Set(T.Add(time.Second))
	b.d.HandlePulse(pps.Pulse{Local: b.osc.LocalAt(T.Add(time.Second)), Quality: pps.QualitySimulated})
	b.ref.Set(T.Add(1100 * time.Millisecond))
	b.d.HandleFix(gnss.Fix{UTC: T, Valid: true, Received: b.osc.Now()})
	b.sec++
	b.ref.Set(T.Add(1300 * time.Millisecond))
	b.d.HandleFix(gnss.Fix{UTC: T.Add(time.Second), Valid: true, Received: b.osc.Now()})
	for i := 0; i < 30; i++ {
		b.second(true, true, true)
	}
	for _, r := range []string{RejectJump, RejectMislabel, RejectNoPulse} {
		if got := b.d.Rejected(r); got != 0 {
			t.Errorf("%s rejections %d, want 0", r, got)
		}
	}
	if st := b.d.Status(); st.Steps > 1 || st.State != Locked || abs(b.osc.TrueOffset()) > 10*time.Microsecond {
		t.Fatalf("after a late sentence: %v, %d steps, true error %v", st.State, st.Steps, b.osc.TrueOffset())
	}
}

func TestReceiverJumpingASecondIsCaught(t *testing.T) {
	b := newBench(t, clocktest.OscillatorConfig{InitialOffset: 300 * time.Millisecond, FrequencyErrorPPB: 3000}, time.Microsecond)
	for i := 0; i < 30; i++ {
		b.second(true, true, true)
	}
	// The receiver names second N+1 for edge N (a firmware bug): the
	// label predicted for the edge is refuted and nothing is stepped.
	b.sec++
	T := start.Add(time.Duration(b.sec) * time.Second)
	b.ref.Set(T)
	b.d.HandlePulse(pps.Pulse{Local: b.osc.LocalAt(T), Quality: pps.QualitySimulated})
	b.ref.Set(T.Add(300 * time.Millisecond))
	b.d.HandleFix(gnss.Fix{UTC: T.Add(time.Second), Valid: true, Received: b.osc.Now()})
	if got := b.d.Rejected(RejectMislabel); got != 1 {
		t.Fatalf("prediction_refuted %d, want 1", got)
	}
	for i := 0; i < 20; i++ {
		b.second(true, true, true)
	}
	if st := b.d.Status(); st.Steps != 1 || st.State != Locked || abs(b.osc.TrueOffset()) > 10*time.Microsecond {
		t.Fatalf("after a jumping receiver: %v, %d steps (want the initial 1), true error %v", st.State, st.Steps, b.osc.TrueOffset())
	}
}

func TestLeapScheduleIsPublished(t *testing.T) {
	list, err := os.ReadFile("leap/testdata/leap-seconds.list")
	if err != nil {
		t.Fatal(err)
	}
	sched, err := leap.Parse(list)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		at      time.Time
		tai     int
		leap    clock.Leap
		expired bool
	}{
		{"day of the 2016 leap", time.Date(2016, 12, 31, 12, 0, 0, 0, time.UTC), 36, clock.LeapInsert, false},
		{"the day after", time.Date(2017, 1, 1, 12, 0, 0, 0, time.UTC), 37, clock.LeapNone, false},
		{"after the list expired", sched.Expires.Add(24 * time.Hour), 37, clock.LeapNone, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := clocktest.NewManual(tc.at)
			osc := clocktest.NewOscillator(ref, clocktest.OscillatorConfig{})
			cfg := DefaultConfig()
			cfg.Leap = sched
			d := New(cfg, osc, slog.New(slog.NewTextHandler(io.Discard, nil)))
			d.Tick()
			st := d.Status()
			if st.TAIOffset != tc.tai || st.Leap != tc.leap || st.LeapListExpired != tc.expired {
				t.Fatalf("TAI %d leap %v expired %v, want %d %v %v", st.TAIOffset, st.Leap, st.LeapListExpired, tc.tai, tc.leap, tc.expired)
			}
			if got := osc.Sync(); got.Leap != tc.leap || got.TAIOffset != tc.tai {
				t.Fatalf("kernel told leap %v TAI %d, want %v %d", got.Leap, got.TAIOffset, tc.leap, tc.tai)
			}
		})
	}
}

func TestLearnedNMEADelayNarrowsThePairingWindow(t *testing.T) {
	b := newBench(t, clocktest.OscillatorConfig{InitialOffset: 300 * time.Millisecond, FrequencyErrorPPB: 2000}, time.Microsecond)
	b.delay = 700 * time.Millisecond // an MTK-style late receiver
	for i := 0; i < 40; i++ {
		b.second(true, true, true)
	}
	st := b.d.Status()
	if d := st.NMEADelay - 700*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("learned NMEA delay %v, want 700 ms", st.NMEADelay)
	}
	b.second(true, true, false) // a fix lost: prediction stops, pairing resumes
	before := b.d.Rejected(RejectAmbiguous)
	b.delay = 150 * time.Millisecond // 150 ms: fine by the static window, not for this receiver
	b.second(true, true, true)
	if got := b.d.Rejected(RejectAmbiguous) - before; got != 1 {
		t.Fatalf("a fix 150 ms after the edge from a 700 ms receiver: %d ambiguous, want 1", got)
	}
	b.delay = 700 * time.Millisecond
	for i := 0; i < 5; i++ {
		b.second(true, true, true)
	}
	if st := b.d.Status(); st.State != Locked {
		t.Fatalf("state %v after the receiver returned to its schedule, want LOCKED", st.State)
	}
}

func TestNMEAOnlyFallback(t *testing.T) {
	osc := clocktest.OscillatorConfig{InitialOffset: 300 * time.Millisecond, FrequencyErrorPPB: 4000, WanderPPB: 5, Seed: 4}
	tests := []struct {
		name        string
		stratum     uint8
		wantState   State
		wantStratum uint8
	}{
		{"configured: serve NMEA-only at stratum 2", 2, Holdover, 2},
		{"not configured: unsynchronized", 0, Unsynchronized, 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MaxHoldoverBound = time.Microsecond // holdover alone ends at once
			cfg.NMEAOnlyStratum = tc.stratum
			b := newBenchConfig(t, cfg, osc, time.Microsecond)
			for i := 0; i < 60; i++ {
				b.second(true, true, true)
			}
			for i := 0; i < 300; i++ {
				b.second(false, true, true) // PPS lost, NMEA valid
				st := b.d.Status()
				if i < 5 {
					continue
				}
				if st.State != tc.wantState || st.Stratum != tc.wantStratum {
					t.Fatalf("after %d s without PPS: %v stratum %d (%s), want %v stratum %d", i, st.State, st.Stratum, st.Reason, tc.wantState, tc.wantStratum)
				}
				if tc.stratum == 0 {
					continue
				}
				bound := st.BoundAt(b.osc.Now())
				if st.Source != "gnss-nmea-only" || bound < time.Millisecond || bound > cfg.NMEAOnlyMaxBound {
					t.Fatalf("after %d s: source %q bound %v, want gnss-nmea-only with a bound of milliseconds", i, st.Source, bound)
				}
				if e := b.osc.TrueOffset(); abs(e) > bound {
					t.Fatalf("after %d s: true error %v outside the NMEA-only bound %v", i, e, bound)
				}
			}
			for i := 0; i < 30; i++ {
				b.second(true, true, true)
			}
			if st := b.d.Status(); st.State != Locked || st.Stratum != 1 || st.Source != "gnss+pps" {
				t.Fatalf("PPS back: %v stratum %d source %s, want LOCKED 1 gnss+pps", st.State, st.Stratum, st.Source)
			}
		})
	}
}

func TestLabellingAcrossReceiverDelays(t *testing.T) {
	tests := []struct {
		name          string
		delay, jitter time.Duration
		doubleEdges   bool
		missEvery     int // drop every n-th edge (0: none)
	}{
		{"50 ms, quick u-blox", 50 * time.Millisecond, 10 * time.Millisecond, false, 0},
		{"200 ms with jitter", 200 * time.Millisecond, 80 * time.Millisecond, false, 0},
		{"500 ms, double edges", 500 * time.Millisecond, 20 * time.Millisecond, true, 0},
		{"800 ms, missed edges", 800 * time.Millisecond, 30 * time.Millisecond, false, 7},
		{"950 ms, MTK-style late", 950 * time.Millisecond, 15 * time.Millisecond, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, clocktest.OscillatorConfig{InitialOffset: 250 * time.Millisecond, FrequencyErrorPPB: 6000, WanderPPB: 0.5, Seed: 11}, time.Microsecond)
			rng := rand.New(rand.NewPCG(5, 6))
			for i := 0; i < 90; i++ {
				b.sec++
				T := start.Add(time.Duration(b.sec) * time.Second)
				b.ref.Set(T)
				pulse := tc.missEvery == 0 || b.sec%tc.missEvery != 0
				if pulse {
					edge := b.osc.LocalAt(T)
					b.d.HandlePulse(pps.Pulse{Local: edge, Seq: uint64(b.sec), Quality: pps.QualitySimulated})
					if tc.doubleEdges && b.sec%5 == 0 {
						// A bouncing line: a second edge 2 ms later.
						b.d.HandlePulse(pps.Pulse{Local: edge.Add(2 * time.Millisecond), Seq: uint64(b.sec), Quality: pps.QualitySimulated})
					}
				}
				d := tc.delay + time.Duration((rng.Float64()*2-1)*float64(tc.jitter))
				b.ref.Set(T.Add(d))
				b.d.HandleFix(gnss.Fix{UTC: T, Valid: true, Received: b.osc.Now()})
				b.ref.Set(T.Add(990 * time.Millisecond))
				b.d.Tick()
			}
			st := b.d.Status()
			if st.State != Locked || st.Steps != 1 {
				t.Fatalf("%v after 90 s with %d steps, want LOCKED after the one initial step (reason %q)", st.State, st.Steps, st.Reason)
			}
			if e := b.osc.TrueOffset(); abs(e) > 10*time.Microsecond {
				t.Fatalf("true error %v, want within 10 µs", e)
			}
			for _, r := range []string{RejectJump, RejectMislabel, RejectDisagree} {
				if n := b.d.Rejected(r); n != 0 {
					t.Errorf("%s: %d, want 0 — a label went wrong", r, n)
				}
			}
			if d := st.NMEADelay - tc.delay; d < -tc.jitter || d > tc.jitter {
				t.Errorf("learned delay %v, want %v ± %v", st.NMEADelay, tc.delay, tc.jitter)
			}
		})
	}
}

// TestLargeOffsetAfterLockIsReacquiredNotSlewed: a receiver that names
// the wrong second at first (a cold start before it has the GPS-UTC
// offset) and then corrects itself leaves a locked servo with a 1 s
// offset. It is neither slewed at the frequency limit for half an hour nor
// refused forever: the node stops serving at the first disagreeing sample
// and, after a few that agree, steps and locks again. At no second is it
// servable with a bound smaller than its true error.
func TestLargeOffsetAfterLockIsReacquiredNotSlewed(t *testing.T) {
	tests := []struct {
		name    string
		wrong   int // seconds labelled one second late
		wantPre State
	}{
		{"after the servo's second sample", 3, Acquiring},
		{"after lock", 60, Locked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, clocktest.OscillatorConfig{InitialOffset: 40 * time.Microsecond, FrequencyErrorPPB: 3000, Seed: 5}, time.Microsecond)
			b.shift = -time.Second
			for range tc.wrong {
				b.second(true, true, true)
			}
			if s := b.d.Status().State; s != tc.wantPre {
				t.Fatalf("state %v before the receiver corrects itself, want %v", s, tc.wantPre)
			}
			if off := b.osc.TrueOffset(); abs(off+time.Second) > time.Millisecond {
				t.Fatalf("true error %v while following the wrong labels, want about 1 s", off)
			}
			steps := b.d.Status().Steps
			b.shift = 0
			for i := range 60 {
				refused := b.d.Rejected(RejectJump) + b.d.Rejected(RejectMislabel)
				b.second(true, true, true)
				if b.d.Rejected(RejectJump)+b.d.Rejected(RejectMislabel) > refused {
					// The label broke step with the edges: the pulse was
					// refused before any offset reached the servo, as a
					// receiver skipping a second is (a few such in a row
					// are believed).
					continue
				}
				st, now := b.d.Status(), b.osc.Now()
				if st.Servable(now) && st.BoundAt(now) < abs(b.osc.TrueOffset()) {
					t.Fatalf("second %d: servable (%v) with bound %v below the true error %v", i, st.State, st.BoundAt(now), b.osc.TrueOffset())
				}
			}
			st := b.d.Status()
			if st.State != Locked || abs(b.osc.TrueOffset()) > 10*time.Microsecond {
				t.Fatalf("60 s after the correction: %v (%q), true error %v; want LOCKED within 10µs", st.State, st.Reason, b.osc.TrueOffset())
			}
			if st.Steps != steps+1 {
				t.Errorf("%d steps after the correction, want 1", st.Steps-steps)
			}
			if got := b.d.Rejected(RejectDisagree); got < 1 || got > 5 {
				t.Errorf("%d samples refused as disagreeing, want a few", got)
			}
		})
	}
}

// TestRecoveryFromHoldoverKeepsServing: when the sky returns after an
// outage the node keeps serving (HOLDOVER, bound within policy) while it
// re-acquires, and never claims less than its true error: going through
// ACQUIRING would turn /health to 503 for seconds and make every node of
// a site leave the load balancer at once. A second loss during the
// re-acquisition holds the frequency again.
func TestRecoveryFromHoldoverKeepsServing(t *testing.T) {
	b := newBench(t, clocktest.OscillatorConfig{InitialOffset: 2 * time.Millisecond, FrequencyErrorPPB: 5000, WanderPPB: 2, Seed: 9}, 2*time.Microsecond)
	for range 60 {
		b.second(true, true, true)
	}
	for range 30 { // a 30 s outage: holdover, well within the 1 ms bound
		b.second(false, false, false)
	}
	if s := b.d.Status(); s.State != Holdover || !s.Servable(b.osc.Now()) {
		t.Fatalf("after a 30 s outage: %v servable=%v, want HOLDOVER and serving", s.State, s.Servable(b.osc.Now()))
	}
	check := func(phase string, i int) {
		t.Helper()
		s, now := b.d.Status(), b.osc.Now()
		if !s.Servable(now) {
			t.Fatalf("%s, second %d: %v (%q) not serving; want serving through re-acquisition", phase, i, s.State, s.Reason)
		}
		if abs(b.osc.TrueOffset()) > s.BoundAt(now) {
			t.Fatalf("%s, second %d: true error %v above the bound %v", phase, i, b.osc.TrueOffset(), s.BoundAt(now))
		}
	}
	for i := range 3 { // the sky returns briefly, then goes again
		b.second(true, true, true)
		check("brief return", i)
	}
	freq := b.d.Status().FrequencyPPB
	for i := range 5 {
		b.second(false, false, false)
		check("lost again", i)
	}
	if s := b.d.Status(); s.State != Holdover || s.FrequencyPPB == freq {
		t.Errorf("lost again: %v at %.1f ppb (was %.1f); want HOLDOVER at the holdover frequency", s.State, s.FrequencyPPB, freq)
	}
	for i := range 30 {
		b.second(true, true, true)
		check("recovery", i)
	}
	if s := b.d.Status(); s.State != Locked {
		t.Fatalf("30 s after the sky returned: %v (%q), want LOCKED", s.State, s.Reason)
	}
}

// TestKernelUnsyncedUntilServing: the kernel hears "synchronized"
// (STA_UNSYNC cleared, what systemd-time-wait-sync and so
// time-sync.target wait for) only while the node serves, never while it
// is FREERUN or ACQUIRING, and again "unsynchronized" once it stops.
func TestKernelUnsyncedUntilServing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxHoldoverBound = 5 * time.Microsecond // holdover ends within seconds
	b := newBenchConfig(t, cfg, clocktest.OscillatorConfig{InitialOffset: 300 * time.Millisecond, FrequencyErrorPPB: 4000, Seed: 4}, time.Microsecond)
	sawSynced := false
	step := func(pps bool) {
		t.Helper()
		b.second(pps, pps, pps)
		st, synced := b.d.Status(), b.osc.Sync().Synchronized
		if synced != st.Servable(b.osc.Now()) || (synced && st.State != Locked && st.State != Holdover) {
			t.Fatalf("second %d: kernel synchronized=%v in %v (servable %v)", b.sec, synced, st.State, st.Servable(b.osc.Now()))
		}
		sawSynced = sawSynced || synced
	}
	for range 40 {
		step(true)
	}
	if !sawSynced || b.d.Status().State != Locked {
		t.Fatalf("never synchronized in 40 s (state %v)", b.d.Status().State)
	}
	for range 120 {
		step(false)
	}
	if s := b.d.Status().State; s != Unsynchronized || b.osc.Sync().Synchronized {
		t.Fatalf("after the outage: %v, kernel synchronized=%v; want UNSYNCHRONIZED and STA_UNSYNC set", s, b.osc.Sync().Synchronized)
	}
}

// TestOneOutlierKeepsLock: an offset above the unlock threshold that the
// servo accepts (an early timestamp, which the late-spike filter does not
// catch) is carried by the bound; only UnlockSamples of them in a row take
// a locked node back to ACQUIRING. Seen under load in a qemu guest: one
// scheduling hiccup turned /health to 503 mid-test.
func TestOneOutlierKeepsLock(t *testing.T) {
	tests := []struct {
		name     string
		outliers int
		want     State
	}{
		{"one", 1, Locked},
		{"two", 2, Locked},
		{"three in a row", 3, Acquiring},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := lockedBench(t, 40*time.Microsecond, 120)
			accepted := b.d.Status().Samples
			for range tc.outliers {
				b.kick = -400 * time.Microsecond
				b.second(true, true, true)
			}
			st, now := b.d.Status(), b.osc.Now()
			if st.Samples != accepted+uint64(tc.outliers) {
				t.Fatalf("%d of %d outliers accepted: the test wants the servo to take them", st.Samples-accepted, tc.outliers)
			}
			if st.State != tc.want {
				t.Fatalf("after %d outliers: %v (%q), want %v", tc.outliers, st.State, st.Reason, tc.want)
			}
			if st.Servable(now) && st.BoundAt(now) < abs(b.osc.TrueOffset()) {
				t.Errorf("servable with bound %v below the true error %v", st.BoundAt(now), b.osc.TrueOffset())
			}
		})
	}
}

// TestOneEarlyTimestampKeepsTheLockedBoundSane: one timestamp 12 ms early
// (a qemu guest's PPS, which the late-spike filter does not catch) reached
// the bound estimator after its Allan fit had found no white phase noise
// (R = 0: clean timestamps, a wandering oscillator). Its normalised
// innovation, 12 ms against the few hundred ns² that model predicted, made
// the model-error factor about 1e9, which then multiplied every later
// variance: the node stayed LOCKED, serving, with a published bound of a
// minute and more (1.18e6 s on the appliance, timenode_clock_error_bound_
// seconds) while its true error was nanoseconds. The bound may widen for
// the outlier, not by orders of magnitude beyond it.
//
// The servo now down-weights an early timestamp at its gate and the
// estimator leaves it out, so the outlier barely moves the clock: the run
// is compared second by second with its twin without the outlier, and
// both must be covered throughout. (The 12 ms outlier used to pass the
// coverage check only by inflating the bound by orders of magnitude; the
// clean twin then left 11 of these 200 s uncovered, because the servo's
// fastest filter, too slow for this wander, was taken at its word:
// Kalman.Predictions.)
func TestOneEarlyTimestampKeepsTheLockedBoundSane(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LockThreshold, cfg.UnlockThreshold = 5*time.Millisecond, 50*time.Millisecond
	cfg.MaxHoldoverBound = 50 * time.Millisecond
	const seconds = 200
	type second struct {
		err, bound time.Duration
		locked     bool
	}
	run := func(kick time.Duration) []second {
		b := newBenchConfig(t, cfg, clocktest.OscillatorConfig{InitialOffset: 2 * time.Millisecond, FrequencyErrorPPB: 5000, WanderPPB: 2, Seed: 9}, 0)
		for range 400 {
			b.second(true, true, true)
		}
		if s := b.d.Status().State; s != Locked {
			t.Fatalf("state %v after 400 s, want LOCKED", s)
		}
		if n, fitted := b.d.est.Noise(); !fitted || n.R > 100 {
			t.Fatalf("noise model %+v (fitted %v): the test wants a fit with next to no white phase noise", n, fitted)
		}
		b.kick = kick
		b.second(true, true, true)
		out := make([]second, seconds)
		for i := range out {
			b.second(true, true, true)
			st, now := b.d.Status(), b.osc.Now()
			out[i] = second{err: b.osc.TrueOffset(), bound: st.BoundAt(now), locked: st.State == Locked}
			if out[i].locked && out[i].bound > cfg.MaxHoldoverBound {
				t.Fatalf("%d s after a %v outlier: LOCKED with bound %v (true error %v), want within %v", i, kick, out[i].bound, out[i].err, cfg.MaxHoldoverBound)
			}
		}
		return out
	}
	clean, kicked := run(0), run(-12*time.Millisecond)
	var moved time.Duration
	uncovered := [2]int{}
	for i := range seconds {
		c, k := clean[i], kicked[i]
		moved = max(moved, abs(k.err-c.err))
		for j, s := range []second{c, k} {
			if s.locked && abs(s.err) > s.bound {
				uncovered[j]++
			}
		}
	}
	if uncovered != [2]int{} {
		t.Errorf("uncovered seconds: %d without the outlier, %d with it, want none", uncovered[0], uncovered[1])
	}
	if moved > 50*time.Nanosecond {
		t.Errorf("the outlier moved the clock by up to %v against its twin", moved)
	}
}

// TestWithheldHoldsOver: GNSS withheld by the integrity guard takes a
// LOCKED clock into HOLDOVER at the next tick, and one that left LOCKED
// for ACQUIRING within the last 5 min too (a spoofer's push past the
// unlock threshold does that seconds before the guard catches it), where
// losing the reference in ACQUIRING would leave it UNSYNCHRONIZED and out
// of service. A clock that never locked, or left LOCKED long ago, is not
// held. Following again, it locks again.
func TestWithheldHoldsOver(t *testing.T) {
	tests := []struct {
		name     string
		clean    int           // seconds of clean pulses first
		unlocked time.Duration // then it left LOCKED this long ago (0: it did not)
		want     State
	}{
		{"locked", 120, 0, Holdover},
		{"left lock 10 s ago", 120, 10 * time.Second, Holdover},
		{"left lock 6 min ago", 120, 6 * time.Minute, Unsynchronized},
		{"never locked", 2, 0, Unsynchronized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBench(t, clocktest.OscillatorConfig{InitialOffset: 3 * time.Millisecond, FrequencyErrorPPB: 3000, Seed: 5}, time.Microsecond)
			for range tt.clean {
				b.second(true, true, true)
			}
			if tt.unlocked > 0 {
				// The state machine's own move out of lock, then its age.
				b.d.transition(Acquiring, "offset above unlock threshold")
				b.d.unlockedAt = b.osc.Now().Add(-tt.unlocked)
			}
			b.d.SetWithheld(true)
			b.second(false, false, true)
			if st := b.d.Status(); tt.want == Holdover && (st.State != Holdover || !strings.Contains(st.Reason, "withheld")) {
				t.Fatalf("one tick after withholding: %v (%q), want HOLDOVER at once", st.State, st.Reason)
			}
			for range 10 {
				b.second(false, false, true)
			}
			st := b.d.Status()
			if st.State != tt.want || (tt.want == Holdover) != st.Servable(b.osc.Now()) {
				t.Fatalf("10 s withheld: %v (%q), servable %v; want %v", st.State, st.Reason, st.Servable(b.osc.Now()), tt.want)
			}
			if tt.want != Holdover {
				return
			}
			b.d.SetWithheld(false)
			for range 120 {
				b.second(true, true, true)
			}
			if s := b.d.Status().State; s != Locked {
				t.Fatalf("following again for 2 min: %v, want LOCKED", s)
			}
		})
	}
}

// TestRunHoldsAtStop: a stopped discipline leaves the clock at the
// servo's frequency estimate, not at its last output, whose phase term
// would run for the whole stop. Two identical locked benches, one
// stopped through Run and one simply abandoned, then run 10 s with
// nothing steering them: the stopped one moves by its residual
// frequency error only.
func TestRunHoldsAtStop(t *testing.T) {
	const gap = 10
	drift := func(stop bool) (moved float64, b *bench) {
		b = lockedBench(t, 0, 300)
		b.kick = 3 * time.Microsecond // the last edge late: a phase term to run
		b.second(true, true, true)
		if stop {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := b.d.Run(ctx, nil, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		before := b.osc.TrueOffset()
		b.ref.Set(start.Add(time.Duration(b.sec+gap) * time.Second))
		return math.Abs(float64(b.osc.TrueOffset() - before)), b
	}
	held, b := drift(true)
	abandoned, _ := drift(false)
	t.Logf("%d s after the stop the clock moved %.1f ns held, %.1f ns at the last output", gap, held, abandoned)
	f, err := b.osc.Frequency()
	if err != nil {
		t.Fatal(err)
	}
	if want := b.d.servo.HoldoverFrequency() + b.d.holdAdjust; f != want {
		t.Errorf("clock frequency after the stop %.3f ppb, want the servo's estimate %.3f", f, want)
	}
	if held > 50 || abandoned < 2*held {
		t.Errorf("the held clock moved %.1f ns in %d s and the abandoned one %.1f ns; want under 50 ns and half the other", held, gap, abandoned)
	}
}
