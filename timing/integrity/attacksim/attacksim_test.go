package attacksim

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/timing/integrity"
)

// TestCleanDay: 24 simulated hours of each clean scenario raise no
// transition at all, and the discipline serves from its lock on with a
// bound that covers its true error every second.
func TestCleanDay(t *testing.T) {
	for _, s := range CleanScenarios() {
		t.Run(s.Name, func(t *testing.T) {
			r := Run(s, nil, 24*time.Hour, 0)
			if r.FalseAlarms != 0 || r.Final != integrity.StateTrusted {
				t.Fatalf("%d false alarms, final %v: %v", r.FalseAlarms, r.Final, r.Transitions)
			}
			if r.Served < 24*3600-600 {
				t.Fatalf("served %d s of 24 h", r.Served)
			}
			if r.Uncovered != 0 {
				t.Fatalf("bound short of the true error in %d of %d s, by up to %.0f ns", r.Uncovered, r.Served, r.MaxExcess)
			}
		})
	}
}

// TestScenariosJudgeByTheirClass: each clean world's PPS check judges by
// the oscillator class a board with that oscillator is configured with
// (--oscillator), so what the bench shows of it holds for such a board.
func TestScenariosJudgeByTheirClass(t *testing.T) {
	want := map[string]integrity.PowerLaw{"tcxo-kernel-pps": integrity.ClassTCXO, "tcxo-gpio-pps-spikes": integrity.ClassTCXO,
		"xo-kernel-pps": integrity.ClassXO}
	for _, s := range CleanScenarios() {
		c, ok := want[s.Name]
		if !ok {
			t.Errorf("scenario %s: no class named for it", s.Name)
			continue
		}
		c.R = s.PPSNoiseNs * s.PPSNoiseNs
		if m := s.Model(); math.Abs(m.Qwf-c.Qwf) > 1e-12*c.Qwf || math.Abs(m.Qrw-c.Qrw) > 1e-12*c.Qrw ||
			math.Abs(m.DriftPPBPerS-c.DriftPPBPerS) > 1e-12*c.DriftPPBPerS || m.R != c.R {
			t.Errorf("scenario %s judges by %+v, want its class %s: %+v", s.Name, m, integrity.ClassString(c), c)
		}
	}
}

// TestScore: a served second counts as covered when the error is within
// the bound, inclusive, and the excess is the largest shortfall.
func TestScore(t *testing.T) {
	var r Result
	if !math.IsNaN(r.Coverage()) {
		t.Fatalf("coverage of nothing served: %v", r.Coverage())
	}
	for _, c := range []struct {
		err, bound float64
		undetected bool
	}{{10, 20, true}, {20, 20, true}, {35, 20, false}, {5, 1, true}, {0, 0, false}} {
		r.score(c.err, c.bound, c.undetected)
	}
	if r.Served != 5 || r.Uncovered != 2 || r.UncoveredBefore != 1 || r.MaxErrServed != 35 || r.MaxExcess != 15 {
		t.Fatalf("got %+v", r)
	}
	if got := r.Coverage(); got != 0.6 {
		t.Fatalf("coverage %v, want 0.6", got)
	}
}

// TestAttacks: every modelled attack reaches the state it should, in both
// scenarios, and the drags are caught before the true error passes 1 ms.
func TestAttacks(t *testing.T) {
	for _, s := range Scenarios() {
		for _, a := range Attacks() {
			t.Run(s.Name+"/"+a.Name, func(t *testing.T) { testAttack(t, s, a) })
		}
	}
}

func testAttack(t *testing.T, s Scenario, a Attack) {
	r := Run(s, &a, 6*time.Hour, 30*time.Hour)
	if r.FalseAlarms != 0 {
		t.Fatalf("false alarm before the onset: %v", r.Transitions)
	}
	switch a.Expect {
	case integrity.StateUntrusted:
		if r.Untrusted < 0 {
			t.Fatalf("never untrusted (first %q, final %v)", r.First, r.Final)
		}
		if r.MaxErrBeforeUntrusted >= 1e6 && a.Name != "push 1 ms" {
			t.Fatalf("true error reached %.0f ns before untrusted", r.MaxErrBeforeUntrusted)
		}
		if a.Name == "push 1 ms" && r.Served < 3600 {
			// Pushed out of LOCKED before the check caught it, the
			// clock holds over (SetWithheld) and serves on.
			t.Fatalf("push: served %d s after the onset, want over an hour of holdover", r.Served)
		}
		if a.Name == "position jump 2 km" && (r.Served < int(HoldWindow/time.Second) || r.Uncovered != 0) {
			// Caught before any time error: the holdover that
			// follows serves its window with a covering bound.
			t.Fatalf("position jump: served %d s, %d uncovered", r.Served, r.Uncovered)
		}
	case integrity.StateSuspect:
		if r.Detected < 0 || r.Final == integrity.StateTrusted {
			t.Fatalf("not suspect (first %q, final %v)", r.First, r.Final)
		}
		if a.Name == "uniform CN0" && (r.Served != 30*3600 || r.Uncovered != 0) {
			// Suspect but locked: it serves throughout with the
			// widened bound.
			t.Fatalf("suspect and locked: served %d s, %d uncovered", r.Served, r.Uncovered)
		}
	case integrity.StateTrusted:
		if r.Detected >= 0 {
			t.Fatalf("left trusted: %v", r.Transitions)
		}
	}
	// Once detected, the published bound covers what the node took
	// in (the residual), for every attack. The ramp on kernel PPS too:
	// the PPS check dates it hours after it began, so the roll back
	// and the check's own residual miss part of it, and the witnesses'
	// floor (WitnessDeparture) covers that part; without it 2,510 s
	// were uncovered after detection (112 µs off under a
	// bound of 67 µs at the alarm).
	// The witnesses-only drags too: their history dates the onset, the
	// holdover starts from before it, and the guard's comparison of
	// GNSS with the held-over clock keeps a GNSS still dragged away
	// untrusted. Held at the dragged frequency instead, the 1 µs/s
	// drag served 5 ms off under a bound of 0.5 ms.
	if r.Uncovered > r.UncoveredBefore {
		t.Errorf("%d s uncovered after detection (max excess %.0f ns)", r.Uncovered-r.UncoveredBefore, r.MaxExcess)
	}
	// A drag the PPS check caught pulled the servo's frequency
	// along; the holdover holds the frequency from before it
	// (timing.Discipline.SetSuspectSince) and stays near the
	// error taken in. Held at the dragged frequency, it ran 476
	// and 793 µs off at 100 ns/s (kernel PPS, GPIO).
	if !a.NoPPSCheck && strings.HasPrefix(a.Name, "drag") && r.MaxErrServed > 100e3 {
		t.Errorf("served up to %.0f ns off after a drag caught at %.0f ns", r.MaxErrServed, r.MaxErrBeforeUntrusted)
	}
	t.Logf("first %s, detected %v, untrusted %v, max error %.3g/%.3g ns, covered %s", r.First, r.Detected, r.Untrusted, r.MaxErrBeforeDetect, r.MaxErrBeforeUntrusted, FormatCoverage(r))
}

// TestDragGoesOnAfterTheHoldOff follows the node for a day after it
// became untrusted. A steady drag goes on after the hold-off, when the
// node follows GNSS again as suspect; its widening grows by the drift GNSS
// showed against the held-over clock, so the bound keeps covering it.
// With a fixed widening the 10 ns/s drag left 30,373 s (kernel PPS) and
// 19,533 s (GPIO) of that day uncovered. Once the widening passes the
// 1 ms policy the node stops serving, LOCKED as it is (fail closed):
// serving on, it published bounds of up to 8.8 ms.
func TestDragGoesOnAfterTheHoldOff(t *testing.T) {
	for _, s := range Scenarios() {
		for _, a := range Attacks() {
			if a.Name != "drag 10 ns/s" && a.Name != "drag 100 ns/s, witnesses only" {
				continue
			}
			t.Run(s.Name+"/"+a.Name, func(t *testing.T) {
				r := RunFor(s, &a, 6*time.Hour, 30*time.Hour, 24*time.Hour)
				if r.Untrusted < 0 || len(r.Transitions) < 2 || r.Final != integrity.StateSuspect {
					t.Fatalf("want untrusted, then suspect after the hold-off: %v", r.Transitions)
				}
				if !strings.Contains(r.Transitions[1].Why, "the widening grows") {
					t.Errorf("released without a measured drift: %q", r.Transitions[1].Why)
				}
				if r.Uncovered > r.UncoveredBefore {
					t.Errorf("a day on: served %d s, %d uncovered after detection (max excess %.0f ns)",
						r.Served, r.Uncovered-r.UncoveredBefore, r.MaxExcess)
				}
				// Out of service for at least the day's last hour: by
				// then the widening is past the policy.
				if r.LastServed < 0 || r.LastServed > r.Untrusted+23*time.Hour {
					t.Errorf("last served %v after the onset, untrusted after %v: want it out of service before the day's last hour",
						r.LastServed, r.Untrusted)
				}
				t.Logf("%s; served up to %.0f µs off, last %v after the onset", FormatCoverage(r), r.MaxErrServed/1e3, r.LastServed)
			})
		}
	}
}

// TestCheapCrystalKeepsJudgingGNSS: on a cheap crystal the holdover bound
// passes the 1 ms policy within minutes of a drag's detection, and the
// discipline goes UNSYNCHRONIZED long before the hour's hold-off ends.
// Its clock runs on, so GNSS is still compared with it; when the node
// follows GNSS again, the comparison is its residual and the bound covers
// the GNSS it follows. Compared only in HOLDOVER, it followed a GNSS
// dragged 3.7 ms (1 µs/s) and 0.7 ms (100 ns/s, witnesses only) away with
// a widening of 1.6 ms and 0.25 ms: 34 and 42 s uncovered after
// detection.
func TestCheapCrystalKeepsJudgingGNSS(t *testing.T) {
	var xo Scenario
	for _, s := range CleanScenarios() {
		if s.Name == "xo-kernel-pps" {
			xo = s
		}
	}
	for _, a := range Attacks() {
		if a.Name != "drag 1 µs/s" && a.Name != "drag 100 ns/s, witnesses only" {
			continue
		}
		t.Run(a.Name, func(t *testing.T) {
			r := Run(xo, &a, 6*time.Hour, 30*time.Hour)
			if r.Untrusted < 0 {
				t.Fatalf("never untrusted: %v", r.Transitions)
			}
			if r.Uncovered > r.UncoveredBefore {
				t.Errorf("%d s uncovered after detection (max excess %.0f ns)", r.Uncovered-r.UncoveredBefore, r.MaxExcess)
			}
			t.Logf("untrusted after %v; %s; served up to %.0f µs off", r.Untrusted, FormatCoverage(r), r.MaxErrServed/1e3)
		})
	}
}
