package simbench

import (
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/aunsorm/timenode/timing"
)

// HoldoverModel is an oscillator whose holdover the bench measures.
type HoldoverModel struct {
	Name string
	Osc  Oscillator
}

// HoldoverModels are the oscillators of the holdover availability table:
// scenario (a)'s TCXO and (b)'s cheap XO with its 20 min HVAC cycle.
func HoldoverModels() []HoldoverModel {
	scs := Scenarios()
	return []HoldoverModel{{"TCXO", scs[0].Osc}, {"cheap XO, ±2.5 °C HVAC cycle", scs[1].Osc}}
}

// Holdover availability runs: lock for holdoverLockS, then lose the sky
// for holdoverMaxS. A node in service has been locked for hours before an
// outage, and the bound's measure of the oscillator's stability needs
// them: after 2 h the longest averaging times are barely measured, and the
// wander they cannot exclude halves the time served (TCXO 7 h).
const (
	holdoverLockS = 12 * 3600
	holdoverMaxS  = 48 * 3600
)

// HoldoverResult is one run's holdover: how long the node served after the
// sky went away (until its bound left the 1 ms policy), how long the true
// error stayed within 1 ms, and the bound's coverage meanwhile.
type HoldoverResult struct {
	ServedS, TrueS int // seconds; holdoverMaxS if still within at the end
	Coverage       float64
	MedianRatio    float64
}

// restartBeforeS is how long before the sky goes away the restart
// runs restart the daemon: an update or a configuration change shortly
// before an antenna fault, or an attacker who provokes a restart and
// then jams.
const restartBeforeS = 30 * 60

// Restart is what a holdover run does before the sky goes away.
type Restart int

// The holdover runs' restarts.
const (
	NoRestart        Restart = iota // locked throughout
	RestartFresh                    // restarted, learning everything afresh
	RestartKeepAllan                // restarted with only the oscillator stability kept
	RestartKeeping                  // restarted with what the daemon keeps: the stability and the servo's memory
)

var restartNames = [...]string{"", "nothing kept", "Allan sums only", "Allan sums and servo memory (shipped)"}

// apply makes sc restart at second at and keep what rs keeps.
func (rs Restart) apply(sc *Scenario, at int) {
	sc.RestartS = at
	sc.KeepStability, sc.KeepServo = rs >= RestartKeepAllan, rs == RestartKeeping
}

// RunHoldover locks model's oscillator (1 µs timestamp noise, noise seed
// i of the sweep) and then removes the sky, with kind's servo; rs
// restarts the discipline restartBeforeS before the outage.
func RunHoldover(m HoldoverModel, kind Kind, i int, rs Restart) HoldoverResult {
	sc := Scenarios()[0]
	sc.Osc = m.Osc
	sc.Seed = RobustFirstSeed + uint64(i)
	sc.DurationS, sc.SettleS = holdoverLockS+holdoverMaxS, holdoverLockS
	sc.Outages = []Outage{{StartS: holdoverLockS, DurationS: holdoverMaxS}}
	from := holdoverLockS
	if rs != NoRestart {
		rs.apply(&sc, holdoverLockS-restartBeforeS)
		from = sc.RestartS
	}
	_, tr := Run(sc, kind)
	res := HoldoverResult{ServedS: holdoverMaxS, TrueS: holdoverMaxS}
	policy := float64(timing.DefaultConfig().MaxHoldoverBound)
	end := holdoverLockS + holdoverMaxS
	for k := holdoverLockS; k < end; k++ {
		serving := tr.State[k] == timing.Holdover || tr.State[k] == timing.Locked // LOCKED until HoldoverAfter
		if res.ServedS == holdoverMaxS && (!serving || tr.BoundNs[k] > policy) {
			res.ServedS = k - holdoverLockS
		}
		if res.TrueS == holdoverMaxS && math.Abs(tr.OffsetNs[k]) > policy {
			res.TrueS = k - holdoverLockS
		}
	}
	// After a restart the coverage counts from it: the restarted
	// discipline's locked bound is judged too.
	res.Coverage, res.MedianRatio = Coverage(tr, from, holdoverLockS+max(res.ServedS, 1))
	return res
}

// WriteHoldover writes the holdover availability table: per oscillator
// model, over seeds noise seeds, the median and worst time served within
// the 1 ms policy bound after the sky goes away, the time the true error
// stayed within 1 ms, and the bound's coverage while serving; then the
// same after a restart shortly before the outage, with and without the
// stability kept.
func WriteHoldover(w io.Writer, seeds int) {
	fmt.Fprintf(w, "### Holdover availability: 1 ms policy bound, over %d seeds\n\n", seeds)
	fmt.Fprintf(w, "Locked %d h with 1 µs timestamp noise, then no sky for up to %d h. *Served*: time until the published bound leaves the 1 ms policy (the node stops serving); *true*: time until the true error exceeds 1 ms; coverage and median bound/error over the seconds served.\n\n",
		holdoverLockS/3600, holdoverMaxS/3600)
	writeHoldoverRows(w, seeds, []Restart{NoRestart})
	fmt.Fprintf(w, "### Holdover availability after a restart, over %d seeds\n\n", seeds)
	fmt.Fprintf(w, "As above, but the daemon restarts %d min before the sky goes away (the clock runs on; a new discipline starts on it) and starts from what it kept: nothing, only the oscillator's Allan sums, or those and the servo's memory (its bank's likelihoods and temperature coefficient), as the daemon does from its state directory. Coverage counts from the restart.\n\n",
		restartBeforeS/60)
	writeHoldoverRows(w, seeds, []Restart{RestartFresh, RestartKeepAllan, RestartKeeping})
}

func writeHoldoverRows(w io.Writer, seeds int, rss []Restart) {
	fmt.Fprint(w, "| oscillator | servo |")
	if rss[0] != NoRestart {
		fmt.Fprint(w, " restart |")
	}
	fmt.Fprintln(w, " served, median | served, worst | true within 1 ms, median | true, worst | coverage, worst | bound/err, median |")
	fmt.Fprint(w, "| --- | --- |")
	if rss[0] != NoRestart {
		fmt.Fprint(w, " --- |")
	}
	fmt.Fprintln(w, " --: | --: | --: | --: | --: | --: |")
	for _, m := range HoldoverModels() {
		for _, kind := range []Kind{Ours, OursNoTemp} {
			for _, rs := range rss {
				var served, truly, ratios []float64
				cov := math.NaN()
				for i := range seeds {
					r := RunHoldover(m, kind, i, rs)
					served = append(served, float64(r.ServedS))
					truly = append(truly, float64(r.TrueS))
					ratios = append(ratios, r.MedianRatio)
					cov = nanMin(cov, r.Coverage)
				}
				sm, _ := medianWorst(served)
				tm, _ := medianWorst(truly)
				rm, _ := medianWorst(ratios)
				fmt.Fprintf(w, "| %s | %s |", m.Name, kind)
				if rs != NoRestart {
					fmt.Fprintf(w, " %s |", restartNames[rs])
				}
				fmt.Fprintf(w, " %s | %s | %s | %s | %s | %.1f |\n",
					hours(sm), hours(least(served)), hours(tm), hours(least(truly)), pct(cov), rm)
			}
		}
	}
	fmt.Fprintln(w)
}

// least is the smallest of v, NaN if empty.
func least(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return slices.Min(v)
}

// hours formats seconds as hours, "≥ max" at the end of the run.
func hours(s float64) string {
	if math.IsNaN(s) {
		return "—"
	}
	if s >= holdoverMaxS {
		return fmt.Sprintf("≥ %d h", holdoverMaxS/3600)
	}
	return fmt.Sprintf("%.1f h", s/3600)
}
