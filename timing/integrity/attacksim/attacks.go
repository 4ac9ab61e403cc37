package attacksim

import (
	"math"
	"time"

	"github.com/aunsorm/timenode/timing/integrity"
)

// Attack transforms the clean inputs of second k ≥ onset (k0 = k − onset).
type Attack struct {
	Name  string
	What  string // one line for the table
	Apply func(k0 int, in *Inputs)
	// NoPPSCheck runs without the PPS detector (to show what the
	// witnesses alone catch).
	NoPPSCheck bool
	// Expect is the state the attack should reach (Trusted: the node
	// should not react; the discipline's own holdover handles it).
	Expect integrity.State
}

// timeShift applies a GNSS time error of ns: the PPS edge moves, the
// node following GNSS is off by as much.
func timeShift(in *Inputs, ns float64) {
	in.GNSSErrNs += ns
	in.PPSPhaseNs -= ns
}

// Attacks returns the modelled attacks.
func Attacks() []Attack {
	drag := func(nsPerS float64) func(int, *Inputs) {
		return func(k0 int, in *Inputs) { timeShift(in, nsPerS*float64(k0)) }
	}
	var as []Attack
	as = append(as,
		Attack{Name: "push 1 ms", What: "time push: GNSS steps 1 ms late", Expect: integrity.StateUntrusted,
			Apply: func(_ int, in *Inputs) { timeShift(in, 1e6) }},
		Attack{Name: "pull 50 µs", What: "time pull: GNSS steps 50 µs early", Expect: integrity.StateUntrusted,
			Apply: func(_ int, in *Inputs) { timeShift(in, -50e3) }},
	)
	for _, r := range []float64{10, 100, 1000} {
		name := map[float64]string{10: "10 ns/s", 100: "100 ns/s", 1000: "1 µs/s"}[r]
		as = append(as,
			Attack{Name: "drag " + name, What: "slow drag, GNSS time moves at " + name, Expect: integrity.StateUntrusted, Apply: drag(r)},
			Attack{Name: "drag " + name + ", witnesses only", What: "the same, PPS check off", Expect: integrity.StateUntrusted, Apply: drag(r), NoPPSCheck: true},
		)
	}
	as = append(as,
		Attack{Name: "ramp 1e-3 ns/s²", What: "drag accelerating slower than the TCXO's own temperature drift", Expect: integrity.StateUntrusted,
			Apply: func(k0 int, in *Inputs) { timeShift(in, 0.5e-3*float64(k0)*float64(k0)) }},
		Attack{Name: "position jump 2 km", What: "spoofer ignorant of the antenna: fixes 2 km away", Expect: integrity.StateUntrusted,
			Apply: func(_ int, in *Inputs) { in.Fix = Offset(in.Fix, 1400, 1400, 0) }},
		Attack{Name: "meaconing 300 µs", What: "replay of the sky 30 m away, 300 µs late, re-radiated evenly", Expect: integrity.StateUntrusted,
			Apply: func(_ int, in *Inputs) {
				timeShift(in, 300e3)
				in.Fix = Offset(in.Fix, 30, 0, 0)
				for i := range in.Snap.CN0 {
					in.Snap.CN0[i] = 45 + 0.3*math.Sin(float64(i))
				}
			}},
		Attack{Name: "uniform CN0", What: "simulator takeover seen only in CN0 (equal strong signals)", Expect: integrity.StateSuspect,
			Apply: func(_ int, in *Inputs) {
				for i := range in.Snap.CN0 {
					in.Snap.CN0[i] = 47 + 0.2*math.Cos(float64(i))
				}
			}},
		Attack{Name: "jamming", What: "CN0 −20 dB, fix lost after 20 s, no pulses", Expect: integrity.StateSuspect,
			Apply: func(k0 int, in *Inputs) {
				for i := range in.Snap.CN0 {
					in.Snap.CN0[i] -= 20
				}
				if k0 >= 20 {
					in.Snap.FixValid, in.Snap.Time, in.Snap.FixDims = false, time.Time{}, 1
					in.Fix.Valid, in.PPSPresent = false, false
				}
			}},
		Attack{Name: "week rollover", What: "receiver dates 1024 weeks back", Expect: integrity.StateUntrusted,
			Apply: func(_ int, in *Inputs) { in.Snap.Time = in.Snap.Time.Add(-integrity.GPSWeekRollover) }},
		Attack{Name: "wrong leap second", What: "receiver applies GPS−UTC 17 s: UTC labels 1 s late", Expect: integrity.StateUntrusted,
			Apply: func(_ int, in *Inputs) {
				in.Snap.LeapSeconds = 17
				in.Snap.Time = in.Snap.Time.Add(time.Second)
			}},
		Attack{Name: "stuck time", What: "receiver repeats the same time", Expect: integrity.StateUntrusted,
			Apply: func(k0 int, in *Inputs) {
				in.Snap.Time = in.Snap.Time.Add(-time.Duration(k0) * time.Second)
			}},
		Attack{Name: "PPS cable cut", What: "no pulses (the discipline holds over)", Expect: integrity.StateTrusted,
			Apply: func(_ int, in *Inputs) { in.PPSPresent = false }},
		Attack{Name: "PPS cable bouncing", What: "30 % of pulses lost, 20 % doubled at random phase", Expect: integrity.StateSuspect,
			Apply: func(k0 int, in *Inputs) {
				h := uint64(k0) * 0x9e3779b97f4a7c15
				u1, u2 := float64(h>>40&0xffff)/65536, float64(h>>20&0xffff)/65536
				if u1 < 0.3 {
					in.PPSPresent = false
				} else if u1 < 0.5 {
					in.PPSExtra, in.PPSExtraNs = true, in.PPSPhaseNs+(u2-0.5)*1e9
				}
			}},
	)
	return as
}
