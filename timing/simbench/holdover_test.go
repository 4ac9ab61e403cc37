package simbench

import (
	"bytes"
	"strings"
	"testing"
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
