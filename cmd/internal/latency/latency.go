// Package latency holds what the benchmark commands (ntpbench, servebench)
// share about latency samples, so both report percentiles the same way.
package latency

import (
	"math"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0-100) of sorted
// samples: the smallest sample with at least p % of the samples at or
// below it; 0 for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
