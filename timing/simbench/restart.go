package simbench

import (
	"fmt"
	"io"
	"math"

	"github.com/aunsorm/timenode/timing"
)

// restartAtS is when the restart runs restart the daemon: three hours
// in, or half an hour before the first outage if that comes sooner.
const restartAtS = 3 * 3600

// RestartResult is what a scenario's run shows from a restart on: the
// RMS of the true offset over the LOCKED seconds from ten minutes after
// it, and the worst coverage of the published bound over the LOCKED and
// the HOLDOVER seconds from it.
type RestartResult struct {
	RMSNs                      float64
	CoverLocked, CoverHold     float64
	LockedSeconds, HoldSeconds int
}

// RunRestart runs scenario sc with our servo (seed i of the sweep,
// SeedScenario), restarting the daemon as rs says (NoRestart: never, and
// the figures count from the same second).
func RunRestart(sc Scenario, i int, rs Restart) RestartResult {
	sc = SeedScenario(sc, i)
	at := restartAtS
	if len(sc.Outages) > 0 {
		at = min(at, sc.Outages[0].StartS-restartBeforeS)
	}
	if rs != NoRestart {
		rs.apply(&sc, at)
	}
	_, tr := Run(sc, Ours)
	var locked, hold Trace
	var sq float64
	n := 0
	for k := at; k < sc.DurationS; k++ {
		switch tr.State[k] {
		case timing.Locked:
			locked.OffsetNs = append(locked.OffsetNs, tr.OffsetNs[k])
			locked.BoundNs = append(locked.BoundNs, tr.BoundNs[k])
			if k >= at+postOutageSettleS {
				sq += tr.OffsetNs[k] * tr.OffsetNs[k]
				n++
			}
		case timing.Holdover:
			hold.OffsetNs = append(hold.OffsetNs, tr.OffsetNs[k])
			hold.BoundNs = append(hold.BoundNs, tr.BoundNs[k])
		}
	}
	res := RestartResult{RMSNs: math.Sqrt(sq / float64(max(n, 1))), LockedSeconds: len(locked.OffsetNs), HoldSeconds: len(hold.OffsetNs)}
	res.CoverLocked, _ = Coverage(locked, 0, len(locked.OffsetNs))
	res.CoverHold, _ = Coverage(hold, 0, len(hold.OffsetNs))
	return res
}

// WriteRestart writes, per scenario over seeds seeds, what a restart of
// the daemon costs our servo while it stays locked: the RMS from the
// restart on without a restart, restarted with nothing kept, and
// restarted with what the daemon keeps, and the bound's coverage.
func WriteRestart(w io.Writer, seeds int) {
	fmt.Fprintf(w, "### Locked after a restart: every scenario over %d seeds\n\n", seeds)
	fmt.Fprintf(w, "Our servo with the temperature input, seeds as in the 100-seed sweep; the daemon restarts %d h in (or %d min before the outage if sooner). RMS of the true offset over the LOCKED seconds from 10 min after the restart to the end (median over seeds; the same seconds without a restart for comparison); coverage of the published bound from the restart on, worst seed.\n\n",
		restartAtS/3600, restartBeforeS/60)
	fmt.Fprintln(w, "| scenario | RMS, no restart | RMS, nothing kept | RMS, kept (shipped) | coverage locked, kept, worst | coverage holdover, kept, worst |")
	fmt.Fprintln(w, "| --- | --: | --: | --: | --: | --: |")
	for _, sc := range Scenarios() {
		var rms [3][]float64
		covL, covH := math.NaN(), math.NaN()
		for i := range seeds {
			for j, rs := range []Restart{NoRestart, RestartFresh, RestartKeeping} {
				r := RunRestart(sc, i, rs)
				rms[j] = append(rms[j], r.RMSNs)
				if rs == RestartKeeping {
					covL = nanMin(covL, r.CoverLocked)
					if r.HoldSeconds > 0 {
						covH = nanMin(covH, r.CoverHold)
					}
				}
			}
		}
		var med [3]float64
		for j := range med {
			med[j], _ = medianWorst(rms[j])
		}
		fmt.Fprintf(w, "| (%s) | %s | %s | %s | %s | %s |\n", sc.Name, ns(med[0]), ns(med[1]), ns(med[2]), pct(covL), pct(covH))
	}
	fmt.Fprintln(w)
}
