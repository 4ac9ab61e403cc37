package pps

import "sync/atomic"

// Stats are a source's counters since it was opened, for a metrics collector
// to read. They only grow.
type Stats struct {
	// Pulses is the number of edges returned by Fetch.
	Pulses uint64
	// Missed is the number of edges the source knows it did not return:
	// from the kernel's sequence number, or from the gap between GPIO edges.
	Missed uint64
	// Timeouts is the number of Fetch calls that returned ErrTimeout.
	Timeouts uint64
}

// counters holds Stats updated by Fetch and read concurrently by collectors.
type counters struct {
	pulses   atomic.Uint64
	missed   atomic.Uint64
	timeouts atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Pulses:   c.pulses.Load(),
		Missed:   c.missed.Load(),
		Timeouts: c.timeouts.Load(),
	}
}
