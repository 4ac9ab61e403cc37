// Package benchrun is the measurement the serving benchmarks
// (cmd/ntpbench, cmd/roughtimebench) share: replies, losses and failures
// counted by the load generator, the server's CPU time over the same
// window, the generator's own CPU time and the round trips, pooled over
// rounds, and the figures derived from them.
package benchrun

import (
	"slices"
	"time"

	"github.com/aunsorm/timenode/cmd/internal/latency"
	"github.com/aunsorm/timenode/cmd/internal/proccpu"
)

// Sample is what one or more measurement rounds against one server saw.
type Sample struct {
	// Replies are the answers counted as served; what counts is the
	// benchmark's (see its loadResult).
	Replies uint64
	// Lost are requests unanswered within the timeout, Stray replies to no
	// outstanding request, Bad replies that failed the protocol's checks.
	Lost, Stray, Bad uint64
	// CPUTicks is the server's user+system time, in proccpu.ClockTicks.
	CPUTicks uint64
	// GenCPU is the load generator thread's own CPU time.
	GenCPU time.Duration
	// Elapsed is the measured wall time.
	Elapsed time.Duration
	// RTTs are the round trips, sorted.
	RTTs []time.Duration
}

// Merge pools another round into s, keeping RTTs sorted.
func (s *Sample) Merge(o Sample) {
	s.Replies += o.Replies
	s.Lost += o.Lost
	s.Stray += o.Stray
	s.Bad += o.Bad
	s.CPUTicks += o.CPUTicks
	s.GenCPU += o.GenCPU
	s.Elapsed += o.Elapsed
	s.RTTs = append(s.RTTs, o.RTTs...)
	slices.Sort(s.RTTs)
}

// Rate is replies per second of wall time.
func (s Sample) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Replies) / s.Elapsed.Seconds()
}

// CPUSeconds is the server's CPU time over the measurement.
func (s Sample) CPUSeconds() float64 { return float64(s.CPUTicks) / proccpu.ClockTicks }

// PerCPUSecond is replies per second of server CPU time: the efficiency
// figure, which does not depend on how much CPU the server managed to get.
func (s Sample) PerCPUSecond() float64 {
	if s.CPUTicks == 0 {
		return 0
	}
	return float64(s.Replies) / s.CPUSeconds()
}

// Percentile returns the p-th percentile (0..100) of the round trips.
func (s Sample) Percentile(p float64) time.Duration { return latency.Percentile(s.RTTs, p) }
