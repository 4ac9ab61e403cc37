package integrity

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// tcxo is the bench's TCXO (timing/simbench): white FM 0.1 ns/√s, random
// walk 0.005 ppb/√s, a 5 ppb temperature swing over 4 h, 1 µs kernel PPS
// timestamps.
// tcxo is the TCXO class with kernel PPS timestamps (1 µs).
var tcxo = withR(ClassTCXO, 1e6)

// withR is class c with timestamp noise variance r (ns²).
func withR(c PowerLaw, r float64) PowerLaw {
	c.R = r
	return c
}

// oscPhase simulates the PPS phase against the oscillator, second by
// second, with the model's noise and a 4-hour temperature cycle, plus
// attack(k) (ns) added to the phase.
type oscPhase struct {
	rng        *rand.Rand
	x, rw      float64
	spikeProb  float64
	noiseNs    float64
	wf, rwStep float64 // white FM (ns per √s) and random walk step (ppb per √s)
	// tempPPB and tempPeriodS are the temperature cycle's frequency
	// swing (amplitude, ppb) and its period.
	tempPPB, tempPeriodS float64
	attack               func(k int) float64
	missingFrom          int
	missingTo            int
}

func newOscPhase(seed uint64) *oscPhase {
	return &oscPhase{rng: rand.New(rand.NewPCG(seed, 7)), noiseNs: 1e3, wf: 0.1, rwStep: 0.005,
		tempPPB: 5, tempPeriodS: 4 * 3600}
}

func (o *oscPhase) next(k int) float64 {
	temp := o.tempPPB * math.Sin(2*math.Pi*float64(k)/o.tempPeriodS)
	o.x += 30 + o.rw + temp + o.wf*o.rng.NormFloat64()
	o.rw += o.rwStep * o.rng.NormFloat64()
	m := o.x + o.noiseNs*o.rng.NormFloat64()
	if o.spikeProb > 0 && o.rng.Float64() < o.spikeProb {
		m += 100e3 + 900e3*o.rng.Float64()
	}
	if o.attack != nil {
		m += o.attack(k)
	}
	return m
}

func runPPS(d *PPSDetector, o *oscPhase, seconds int) (first int, ev Evidence) {
	first = -1
	for k := range seconds {
		x := o.next(k)
		if k >= o.missingFrom && k < o.missingTo {
			continue
		}
		evs := d.Observe(t0.Add(time.Duration(k)*time.Second), int64(k), x)
		for _, e := range evs {
			if e.Level >= LevelSuspect && first < 0 {
				first, ev = k, e
			}
		}
	}
	return first, ev
}

func TestPPSDetector(t *testing.T) {
	const warm = 4 * 3600
	tests := []struct {
		name    string
		seconds int
		spikes  float64
		attack  func(k int) float64
		miss    [2]int
		// want is the reason expected, "" for none; detection must come
		// within maxDelay seconds of warm.
		want     string
		maxDelay int
	}{
		{name: "clean 8 h", seconds: 8 * 3600},
		{name: "clean with 1% latency spikes", seconds: 3 * 3600, spikes: 0.01},
		{name: "clean with a 10 s gap", seconds: 3 * 3600, miss: [2]int{5000, 5010}},
		{name: "push 50 µs", seconds: warm + 600, attack: step(warm, 50e3), want: ReasonPhaseStep, maxDelay: 10},
		{name: "pull 20 µs", seconds: warm + 600, attack: step(warm, -20e3), want: ReasonPhaseStep, maxDelay: 10},
		{name: "drag 1 µs/s", seconds: warm + 600, attack: drag(warm, 1000), want: ReasonFrequencyChange, maxDelay: 60},
		{name: "drag 100 ns/s", seconds: warm + 3600, attack: drag(warm, 100), want: ReasonFrequencyChange, maxDelay: 600},
		{name: "drag 10 ns/s", seconds: warm + 3*3600, attack: drag(warm, 10), want: ReasonFrequencyChange, maxDelay: 3000},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOscPhase(uint64(i + 1))
			o.spikeProb, o.attack = tc.spikes, tc.attack
			o.missingFrom, o.missingTo = tc.miss[0], tc.miss[1]
			d := NewPPSDetector(PPSConfig{Model: tcxo})
			first, ev := runPPS(d, o, tc.seconds)
			if tc.want == "" {
				if first >= 0 {
					t.Fatalf("false alarm at %d s: %v", first, ev)
				}
				return
			}
			if first < warm || first > warm+tc.maxDelay || ev.Reason != tc.want {
				t.Fatalf("first alarm at %d s (%v), want %s within %d s of %d", first, ev, tc.want, tc.maxDelay, warm)
			}
		})
	}
}

func step(at int, ns float64) func(int) float64 {
	return func(k int) float64 {
		if k >= at {
			return ns
		}
		return 0
	}
}

// pushed is a push of ns from second at until second until.
func pushed(at, until int, ns float64) func(int) float64 {
	return func(k int) float64 {
		if k >= at && k < until {
			return ns
		}
		return 0
	}
}

func drag(at int, nsPerS float64) func(int) float64 {
	return func(k int) float64 {
		if k >= at {
			return nsPerS * float64(k-at)
		}
		return 0
	}
}

// TestPPSHeldUntilGNSSReturns: after a push the evidence lasts while GNSS
// stays pushed, and clears (history reset, no re-alarm) once it returns.
func TestPPSHeldUntilGNSSReturns(t *testing.T) {
	const at, back = 3 * 3600, 3*3600 + 1800
	o := newOscPhase(9)
	o.attack = pushed(at, back, 200e3)
	d := NewPPSDetector(PPSConfig{Model: tcxo})
	last := -1
	for k := range back + 3600 {
		for _, e := range d.Observe(t0.Add(time.Duration(k)*time.Second), int64(k), o.next(k)) {
			if e.Level >= LevelSuspect {
				last = k
			}
		}
		if k == back-1 && !d.Held() {
			t.Fatal("not holding while GNSS is pushed")
		}
	}
	if last < back-5 || last > back+10 {
		t.Fatalf("last evidence at %d s, want just before %d", last, back)
	}
	if d.Held() {
		t.Fatal("still holding an hour after GNSS returned")
	}
}

// TestPPSHoldCarriesTheLine: a detector given another's held line (as the
// daemon gives it across a restart) judges the pulses that follow as the
// one that alarmed does, with the same evidence while GNSS stays pushed,
// and clears at the same pulse once it returns; without the line a fresh
// detector sees nothing of the push while it lasts.
func TestPPSHoldCarriesTheLine(t *testing.T) {
	const at, handover, back = 3 * 3600, 3*3600 + 600, 3*3600 + 1800
	o := newOscPhase(11)
	o.attack = pushed(at, back, 200e3)
	a := NewPPSDetector(PPSConfig{Model: tcxo})
	var b, fresh *PPSDetector
	var aEv, bEv, freshEv int
	lastA, lastB := -1, -1
	for k := range back + 600 {
		x := o.next(k)
		now := t0.Add(time.Duration(k) * time.Second)
		if k == handover {
			l, ok := a.HeldLine()
			if !ok {
				t.Fatal("no held line 10 min into the push")
			}
			b, fresh = NewPPSDetector(PPSConfig{Model: tcxo}), NewPPSDetector(PPSConfig{Model: tcxo})
			if err := b.Hold(l); err != nil {
				t.Fatal(err)
			}
			if err := a.Hold(l); err == nil {
				t.Error("Hold on a detector that has seen pulses: no error")
			}
		}
		evA := a.Observe(now, int64(k), x)
		if b == nil {
			continue
		}
		evB := b.Observe(now, int64(k), x)
		if evF := fresh.Observe(now, int64(k), x); k < back {
			freshEv += len(evF)
		}
		aEv += len(evA)
		bEv += len(evB)
		if len(evA) > 0 {
			lastA = k
		}
		if len(evB) > 0 {
			lastB = k
			// Once the carried detector's median has its full window
			// the two medians are the same.
			if k >= handover+medianWindow && (len(evA) == 0 || evB[0].Reason != evA[0].Reason ||
				math.Abs(evB[0].Values["held_error_ns"]-evA[0].Values["held_error_ns"]) > 1e-3) {
				t.Fatalf("second %d: carried line says %v, the alarmed detector %v", k, evB, evA)
			}
		}
	}
	// The carried detector needs medianNeed pulses before its first
	// median: at most that many fewer reports.
	if bEv < aEv-medianNeed || bEv > aEv || lastB != lastA || lastA < back-5 {
		t.Errorf("carried line: %d reports, last at %d s; alarmed detector %d, last at %d s (GNSS back at %d)", bEv, lastB, aEv, lastA, back)
	}
	if b.Held() || a.Held() {
		t.Errorf("still holding 10 min after GNSS returned: carried %v, alarmed %v", b.Held(), a.Held())
	}
	if freshEv != 0 {
		t.Errorf("a fresh detector reported %d times during the push: it learns the pushed line as its own, want none", freshEv)
	}
}

func TestHeldLineValidate(t *testing.T) {
	good := HeldLine{Sec: -40, X: 1e12, Y: 3, Tau: 1024, Why: ReasonFrequencyDrift, ExtraNs: 5}
	if err := good.Validate(); err != nil {
		t.Fatalf("%+v: %v", good, err)
	}
	tests := []struct {
		name string
		edit func(*HeldLine)
	}{
		{"NaN phase", func(l *HeldLine) { l.X = math.NaN() }},
		{"infinite slope", func(l *HeldLine) { l.Y = math.Inf(1) }},
		{"no window", func(l *HeldLine) { l.Tau = 0 }},
		{"window past the ring", func(l *HeldLine) { l.Tau = 2 * heldSpan }},
		{"negative widening", func(l *HeldLine) { l.ExtraNs = -1 }},
		{"not a PPS alarm", func(l *HeldLine) { l.Why = ReasonPPSMissing }},
	}
	for _, tt := range tests {
		l := good
		tt.edit(&l)
		if err := l.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", tt.name, l)
		}
		if err := NewPPSDetector(PPSConfig{Model: tcxo}).Hold(l); err == nil {
			t.Errorf("%s: Hold took %+v", tt.name, l)
		}
	}
}

func TestPPSMissingAndUnstable(t *testing.T) {
	d := NewPPSDetector(PPSConfig{Model: tcxo})
	for k := range 10 {
		d.Observe(t0.Add(time.Duration(k)*time.Second), int64(k), 0)
	}
	if evs := d.Tick(t0.Add(12 * time.Second)); len(evs) != 0 {
		t.Fatalf("missing after 3 s: %v", evs)
	}
	evs := d.Tick(t0.Add(15 * time.Second))
	if len(evs) != 1 || evs[0].Reason != ReasonPPSMissing || evs[0].Level != LevelInfo {
		t.Fatalf("cut cable: %v", evs)
	}
	// A bouncing connector: every third pulse missing, duplicates.
	var got []Evidence
	for k := 10; k < 80; k++ {
		if k%3 == 0 {
			continue
		}
		now := t0.Add(time.Duration(k) * time.Second)
		got = append(got, d.Observe(now, int64(k), 0)...)
		got = append(got, d.Observe(now, int64(k), 5e8)...)
	}
	found := false
	for _, e := range got {
		found = found || e.Reason == ReasonPPSUnstable
	}
	if !found {
		t.Fatal("bouncing pulses not reported unstable")
	}
}

// TestPPSCutIsNotInstability: a cable cut for five minutes, then pulses
// again, is one gap, reported as pps_missing while it lasts and never as
// pps_unstable (which made the node suspect, and kept it so for the
// policy's ten-minute clearing time, after every long cut). Two cuts in a
// minute are not a bouncing connector either; a third is.
func TestPPSCutIsNotInstability(t *testing.T) {
	tests := []struct {
		name     string
		gaps     [][2]int64 // [from, to) seconds without a pulse
		unstable bool
	}{
		{"one 5 min cut", [][2]int64{{100, 400}}, false},
		{"one 30 s cut", [][2]int64{{100, 130}}, false},
		{"two cuts", [][2]int64{{100, 115}, {120, 135}}, false},
		{"three cuts", [][2]int64{{100, 110}, {115, 125}, {130, 140}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewPPSDetector(PPSConfig{Model: tcxo})
			missing := func(k int64) bool {
				for _, g := range tt.gaps {
					if k >= g[0] && k < g[1] {
						return true
					}
				}
				return false
			}
			var reasons []string
			for k := int64(0); k < 600; k++ {
				now := t0.Add(time.Duration(k) * time.Second)
				if !missing(k) {
					for _, e := range d.Observe(now, k, 0) {
						reasons = append(reasons, e.Reason)
					}
				}
				for _, e := range d.Tick(now) {
					reasons = append(reasons, e.Reason)
				}
			}
			if got := slices.Contains(reasons, ReasonPPSUnstable); got != tt.unstable {
				t.Errorf("pps_unstable reported %v, want %v (reasons %v)", got, tt.unstable, slices.Compact(reasons))
			}
			if !slices.Contains(reasons, ReasonPPSMissing) && tt.gaps[0][1]-tt.gaps[0][0] >= 5 {
				t.Errorf("a cut of %d s was never reported missing", tt.gaps[0][1]-tt.gaps[0][0])
			}
		})
	}
}

// TestPPSAlarmMeasuresTheStep: the alarm's evidence says how far GNSS is
// from the held oscillator line, within the allowance it also reports, for
// a push and a pull of different sizes.
func TestPPSAlarmMeasuresTheStep(t *testing.T) {
	for _, step := range []float64{-50e3, 200e3, 1e6} {
		o := newOscPhase(11)
		o.attack = func(k int) float64 {
			if k >= 3*3600 {
				return step
			}
			return 0
		}
		d := NewPPSDetector(PPSConfig{Model: tcxo})
		first, ev := runPPS(d, o, 3*3600+60)
		if first < 0 {
			t.Fatalf("step %.0f ns: no alarm", step)
		}
		e, allow := ev.Values["held_error_ns"], ev.Values["allowed_ns"]
		if allow <= 0 || math.Abs(e-step) > allow {
			t.Fatalf("step %.0f ns: held error %.0f ns, allowed %.0f ns", step, e, allow)
		}
		if got, ok := ev.TimeError(); !ok || float64(got) < math.Abs(step) {
			t.Fatalf("step %.0f ns: TimeError %v %v, want at least the step", step, got, ok)
		}
	}
}
