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
	for _, row := range []string{"| TCXO | kalman (ours) | ", "| TCXO | kalman (ours) | restarted, stability kept |",
		"| TCXO | kalman (ours) | restarted, stability not kept |"} {
		if !strings.Contains(buf.String(), row) {
			t.Errorf("tables lack the row %q:\n%s", row, buf.String())
		}
	}
}

// TestRestartKeepsHoldover: the shipped discipline, restarted 30 minutes
// before the sky goes away, serves a TCXO's holdover longer when it
// starts from the stability its predecessor measured, and its bound
// still covers the error from the restart on.
func TestRestartKeepsHoldover(t *testing.T) {
	m := HoldoverModels()[0]
	fresh := RunHoldover(m, Ours, 0, RestartFresh)
	kept := RunHoldover(m, Ours, 0, RestartKeeping)
	t.Logf("served %.1f h restarted afresh, %.1f h with the stability kept; coverage %.5f / %.5f",
		float64(fresh.ServedS)/3600, float64(kept.ServedS)/3600, fresh.Coverage, kept.Coverage)
	if kept.ServedS < fresh.ServedS*3/2 {
		t.Errorf("holdover served %d s with the stability kept, %d s without: want at least half as long again", kept.ServedS, fresh.ServedS)
	}
	if kept.Coverage < 0.999 {
		t.Errorf("coverage %.5f from the restart with the stability kept, want ≥ 99.9 %%", kept.Coverage)
	}
}
