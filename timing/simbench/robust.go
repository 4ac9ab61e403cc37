package simbench

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
)

// RobustFirstSeed is the first noise seed of the many-seed robustness
// sweep; seed index i uses RobustFirstSeed+i, so every servo, and every
// version of a servo, sees the same realisations.
const RobustFirstSeed = 1000

// SlowLockS is the lock-time target: a seed whose lock takes longer, or
// never comes, counts as a failure in the robustness table.
const SlowLockS = 60

// SeedScenario returns scenario sc as seed index i of the robustness
// sweep: its own noise seed and a start drawn from that seed. The initial
// frequency error is +200 ppm (i mod 4 = 0), −200 ppm (i mod 4 = 1) or
// uniform in ±200 ppm; the initial phase is stepped (0.2–0.5 s, either
// sign) for even i and slewed (within ±1 ms) for odd i, so both start paths
// meet the worst frequency error.
func SeedScenario(sc Scenario, i int) Scenario {
	rng := rand.New(rand.NewPCG(uint64(i), 0x5717))
	sc.Seed = RobustFirstSeed + uint64(i)
	switch i % 4 {
	case 0:
		sc.Osc.InitFreqPPB = 200e3
	case 1:
		sc.Osc.InitFreqPPB = -200e3
	default:
		sc.Osc.InitFreqPPB = (2*rng.Float64() - 1) * 200e3
	}
	sign := 1.0
	if rng.Float64() < 0.5 {
		sign = -1
	}
	if i%2 == 0 {
		sc.InitPhaseNs = sign * (0.2e9 + 0.3e9*rng.Float64())
	} else {
		sc.InitPhaseNs = sign * 1e6 * rng.Float64()
	}
	return sc
}

// RobustStats summarises one servo kind on one scenario over many seeds.
// Lock times are seconds; a worst of -1 means some seed never locked.
type RobustStats struct {
	Kind                    Kind
	Seeds                   int
	RMSMedian, RMSWorst     float64 // ns
	P99Median, P99Worst     float64 // ns
	LockMedian, LockWorst   int
	RatioMedian, RatioWorst float64 // this kind's RMS / the oracle's, per seed
	NeverLocked             int     // seeds that never locked
	SlowLock                int     // seeds that locked after more than SlowLockS
	Missed                  int     // spikes accepted, over all seeds
	SwitchesMedian          int     // changes of the selected filter per run (ours only)
	// Bound: worst coverage over seeds and the median over seeds of the
	// median bound/|error|, while LOCKED and in HOLDOVER.
	CovLockedWorst, RateLockedMedian     float64
	CovHoldoverWorst, RateHoldoverMedian float64
}

// RobustSweep runs every kind in kinds (which must include Oracle for the
// ratios) on seeds seed indices of sc (see SeedScenario), on at most
// workers goroutines (GOMAXPROCS if workers ≤ 0). The result does not
// depend on workers.
func RobustSweep(sc Scenario, kinds []Kind, seeds, workers int) []RobustStats {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	res := make([][]Result, seeds) // [seed][kind]
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, seeds) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				s := SeedScenario(sc, i)
				rs := make([]Result, len(kinds))
				for j, k := range kinds {
					rs[j], _ = Run(s, k)
				}
				res[i] = rs
			}
		}()
	}
	for i := range seeds {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	oracle := slices.Index(kinds, Oracle)
	out := make([]RobustStats, len(kinds))
	for j, k := range kinds {
		st := RobustStats{Kind: k, Seeds: seeds}
		var rms, p99, ratio, rl, rh []float64
		st.CovLockedWorst, st.CovHoldoverWorst = math.NaN(), math.NaN()
		var locks, switches []int
		for i := range seeds {
			r := res[i][j]
			rms = append(rms, r.RMSNs)
			p99 = append(p99, r.P99Ns)
			if oracle >= 0 {
				ratio = append(ratio, r.RMSNs/res[i][oracle].RMSNs)
			}
			st.Missed += r.Missed
			switches = append(switches, r.Switches)
			if !math.IsNaN(r.CoverageLocked) {
				st.CovLockedWorst = nanMin(st.CovLockedWorst, r.CoverageLocked)
				rl = append(rl, r.RateLocked)
			}
			if !math.IsNaN(r.CoverageHoldover) {
				st.CovHoldoverWorst = nanMin(st.CovHoldoverWorst, r.CoverageHoldover)
				rh = append(rh, r.RateHoldover)
			}
			switch {
			case r.LockS < 0:
				st.NeverLocked++
				locks = append(locks, math.MaxInt)
			case r.LockS > SlowLockS:
				st.SlowLock++
				locks = append(locks, r.LockS)
			default:
				locks = append(locks, r.LockS)
			}
		}
		st.RMSMedian, st.RMSWorst = medianWorst(rms)
		st.P99Median, st.P99Worst = medianWorst(p99)
		st.RatioMedian, st.RatioWorst = medianWorst(ratio)
		st.RateLockedMedian, _ = medianWorst(rl)
		st.RateHoldoverMedian, _ = medianWorst(rh)
		slices.Sort(switches)
		st.SwitchesMedian = switches[len(switches)/2]
		slices.Sort(locks)
		st.LockMedian, st.LockWorst = locks[len(locks)/2], locks[len(locks)-1]
		if st.LockMedian == math.MaxInt {
			st.LockMedian = -1
		}
		if st.LockWorst == math.MaxInt {
			st.LockWorst = -1
		}
		out[j] = st
	}
	return out
}

// pct formats a share as a percentage, — for NaN.
func pct(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.3f %%", 100*v)
}

// nanMin is min treating NaN as no value yet.
func nanMin(a, b float64) float64 {
	if math.IsNaN(a) {
		return b
	}
	return min(a, b)
}

// medianWorst returns the median and the largest of v (NaN if empty).
func medianWorst(v []float64) (median, worst float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	w := slices.Clone(v)
	slices.Sort(w)
	return w[len(w)/2], w[len(w)-1]
}

// WriteRobustness runs RobustSweep for every scenario in scs with every
// kind in Kinds and writes the many-seed tables: accuracy and lock, then
// the published bound.
func WriteRobustness(w io.Writer, scs []Scenario, seeds, workers int) {
	all := make([][]RobustStats, len(scs))
	for i, sc := range scs {
		all[i] = RobustSweep(sc, Kinds, seeds, workers)
	}
	fmt.Fprintf(w, "### Robustness: every scenario over %d seeds (%d…%d), from ±200 ppm\n\n",
		seeds, RobustFirstSeed, RobustFirstSeed+seeds-1)
	fmt.Fprintln(w, "Each seed draws its own noise and start: initial frequency +200 ppm, −200 ppm or uniform in between;"+
		" initial phase stepped (0.2–0.5 s) on even seeds, slewed (within 1 ms) on odd ones (`simbench.SeedScenario`)."+
		" RMS/oracle is the ratio on the same seed. A lock time of — means some seed never locked.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | servo | RMS, median | RMS, worst | p99, median | p99, worst | lock, median | lock, worst | RMS/oracle, median | RMS/oracle, worst | never locked / lock > 60 s | spikes missed | filter switches, median |")
	fmt.Fprintln(w, "| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
	for i, sc := range scs {
		for _, st := range all[i] {
			fmt.Fprintf(w, "| (%s) | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %d / %d | %d | %d |\n",
				sc.Name, st.Kind, ns(st.RMSMedian), ns(st.RMSWorst), ns(st.P99Median), ns(st.P99Worst),
				secs(st.LockMedian), secs(st.LockWorst), st.RatioMedian, st.RatioWorst,
				st.NeverLocked, st.SlowLock, st.Missed, st.SwitchesMedian)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "### Bound: every scenario over the same %d seeds\n\n", seeds)
	fmt.Fprintln(w, "Coverage: share of seconds with |true offset| ≤ the published bound, worst seed; bound/err: median over seconds, median over seeds; while the discipline says LOCKED and while in HOLDOVER (the 1 h outage). The bound is the discipline's: its estimator's own or, with the Kalman servo, the smaller bound the servo's plausible models imply (the oracle's excepted).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | servo | coverage locked, worst | bound/err locked, median | coverage holdover, worst | bound/err holdover, median |")
	fmt.Fprintln(w, "| --- | --- | --: | --: | --: | --: |")
	for i, sc := range scs {
		for _, st := range all[i] {
			fmt.Fprintf(w, "| (%s) | %s | %s | %.1f | %s | %.1f |\n", sc.Name, st.Kind,
				pct(st.CovLockedWorst), st.RateLockedMedian, pct(st.CovHoldoverWorst), st.RateHoldoverMedian)
		}
	}
	fmt.Fprintln(w)
}
