package simbench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

func TestWriteHoldoverSmall(t *testing.T) {
	// Only the table's shape here: the runs are two days long, so the
	// figures belong to make bench-timing.
	m := HoldoverModels()
	if len(m) != 2 || m[0].Osc.TempCoPPB <= 0 || m[1].Osc.TempAmpC <= m[0].Osc.TempAmpC {
		t.Fatalf("holdover models %+v: want the TCXO, then the XO with the larger temperature swing", m)
	}
	var buf bytes.Buffer
	WriteHoldover(&buf, 0)
	for _, row := range []string{"| TCXO | kalman (ours) | ", "| TCXO | kalman (ours) | nothing kept |",
		"| TCXO | kalman (ours) | Allan sums only |", "| TCXO | kalman (ours) | Allan sums and servo memory (shipped) |"} {
		if !strings.Contains(buf.String(), row) {
			t.Errorf("tables lack the row %q:\n%s", row, buf.String())
		}
	}
}

// TestRestartKeepsHoldover: the shipped discipline, restarted 30 minutes
// before the sky goes away, serves a TCXO's holdover about as long as
// one that was not restarted when it starts from what its predecessor
// kept (the oscillator stability and the servo's memory), far longer
// than one that learns afresh, and its bound still covers the error from
// the restart on.
func TestRestartKeepsHoldover(t *testing.T) {
	skipEmulated(t)
	m := HoldoverModels()[0]
	for _, kind := range []Kind{Ours, OursNoTemp} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			whole := RunHoldover(m, kind, 0, NoRestart)
			fresh := RunHoldover(m, kind, 0, RestartFresh)
			kept := RunHoldover(m, kind, 0, RestartKeeping)
			h := func(s int) float64 { return float64(s) / 3600 }
			t.Logf("served %.1f h without a restart, %.1f h restarted afresh, %.1f h restarted with what was kept; coverage %.5f / %.5f / %.5f",
				h(whole.ServedS), h(fresh.ServedS), h(kept.ServedS), whole.Coverage, fresh.Coverage, kept.Coverage)
			if kept.ServedS < fresh.ServedS*4/3 || kept.ServedS < whole.ServedS*9/10 {
				t.Errorf("holdover served %.1f h with what was kept, %.1f h afresh, %.1f h without a restart: want at least a third more than afresh and 90 %% of no restart",
					h(kept.ServedS), h(fresh.ServedS), h(whole.ServedS))
			}
			if kept.Coverage < 0.999 {
				t.Errorf("coverage %.5f from the restart with what was kept, want ≥ 99.9 %%", kept.Coverage)
			}
		})
	}
}

// TestRestartLocked: restarted with what the daemon keeps, the shipped
// discipline in scenario (a) steers as well after the restart as it did
// without one, better than a restart that learns afresh, and its bound
// covers every second from the restart on.
func TestRestartLocked(t *testing.T) {
	skipEmulated(t)
	sc := Scenarios()[0]
	whole := RunRestart(sc, 0, NoRestart)
	fresh := RunRestart(sc, 0, RestartFresh)
	kept := RunRestart(sc, 0, RestartKeeping)
	t.Logf("RMS from the restart: %.0f ns without one, %.0f ns afresh, %.0f ns kept; coverage locked %.5f, holdover %.5f",
		whole.RMSNs, fresh.RMSNs, kept.RMSNs, kept.CoverLocked, kept.CoverHold)
	if kept.RMSNs > 1.05*whole.RMSNs || kept.RMSNs >= fresh.RMSNs {
		t.Errorf("RMS after the restart %.0f ns kept, %.0f ns afresh, %.0f ns without a restart: want within 5 %% of no restart and below afresh",
			kept.RMSNs, fresh.RMSNs, whole.RMSNs)
	}
	if kept.CoverLocked < 1 || kept.HoldSeconds == 0 || kept.CoverHold < 1 {
		t.Errorf("coverage from the restart: locked %.5f, holdover %.5f over %d s; want every second covered, holdover included",
			kept.CoverLocked, kept.CoverHold, kept.HoldSeconds)
	}
	var buf bytes.Buffer
	WriteRestart(&buf, 0)
	if !strings.Contains(buf.String(), "| (a) |") {
		t.Errorf("restart table lacks scenario (a):\n%s", buf.String())
	}
}

// skipEmulated skips a test of days of simulated seconds on an emulated
// CPU, where it takes a minute and more: it computes the same figures on
// any CPU and at any date, and the host's run checks them.
func skipEmulated(t *testing.T) {
	t.Helper()
	if testbin.Emulated() {
		t.Skip("emulated CPU: days of simulated seconds take minutes under TCG; the figures do not depend on the CPU or the date, and the host run checks them")
	}
}
