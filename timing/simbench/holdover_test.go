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
	if !strings.Contains(buf.String(), "| TCXO | kalman (ours) |") {
		t.Errorf("table lacks the TCXO row:\n%s", buf.String())
	}
}
