package simbench

import (
	"github.com/aunsorm/timenode/timing/servo"
)

// GoldenStep is one entry of a golden servo sequence: the input sample and
// the servo's exact answer.
type GoldenStep struct {
	OffsetNs float64 `json:"offset_ns"`
	LocalNs  int64   `json:"local_ns"`
	TempC    float64 `json:"temp_c"`
	State    string  `json:"state"`
	FreqPPB  float64 `json:"freq_ppb"`
	StepNs   float64 `json:"step_ns"`
	Rejected bool    `json:"rejected,omitempty"`
}

// Golden runs a scenario for seconds with a servo kind and records every
// sample the servo was given and its output. Seconds without a pulse are
// left out (the servo is not called for them).
func Golden(sc Scenario, kind Kind, seconds int) []GoldenStep {
	w := newWorld(sc)
	s := newServo(kind, sc)
	var out []GoldenStep
	x := sc.InitPhaseNs
	for k := range seconds {
		freq, errNs, _, present := w.second(k)
		applied := s.HoldoverFrequency()
		if present {
			t := sc.Osc.Temperature(float64(k))
			if kind == Ours {
				s.SetTemperature(t)
			}
			o := s.Sample(x+errNs, int64(k)*1e9)
			out = append(out, GoldenStep{OffsetNs: x + errNs, LocalNs: int64(k) * 1e9, TempC: t,
				State: o.State.String(), FreqPPB: o.FreqPPB, StepNs: o.StepNs, Rejected: o.Rejected})
			applied = o.FreqPPB
			if o.State == servo.Jump {
				x += o.StepNs
			}
		}
		x += freq + applied
	}
	return out
}
