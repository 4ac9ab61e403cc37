package servo

// Config is the policy shared by all algorithms.
type Config struct {
	// StepThresholdNs: offsets larger than this are corrected by a step
	// rather than slewed (128 ms by default).
	StepThresholdNs float64
	// StepAfterLock allows steps after the first lock (off by default).
	StepAfterLock bool
	// RelockAfter and RelockAgreeNs: without StepAfterLock, a locked servo
	// refuses an offset beyond StepThresholdNs (Output.Disagree: the
	// caller stops serving); after RelockAfter consecutive ones that agree
	// with each other within RelockAgreeNs, the reference has really moved
	// against the clock and the servo re-acquires, stepping as at the
	// first lock. Slewing such an offset would take half an hour at the
	// frequency limit; refusing it forever would never recover.
	RelockAfter   int
	RelockAgreeNs float64
	// StartSamples: the servo holds its starting frequency for this many
	// samples and takes the first frequency and phase from all of them by
	// robust (median) estimates, so that no single sample, a latency spike
	// above all, sets the start; it then steps or locks. Below 2 it is 2:
	// the classic estimate from the first two samples.
	StartSamples int
	// StartFreqSigmaPPB is how far the oscillator's frequency may be, a
	// priori, from the correction the servo starts from (200 ppm: a
	// crystal's tolerance with its temperature and ageing; the bench
	// locks from ±200 ppm). The start takes the drift its line measured
	// in proportion to how well it measured it against this spread: all
	// of it under ordinary noise, almost none of it from samples
	// jittered by milliseconds, whose line is thousands of ppm of noise
	// and would otherwise command the frequency clamp. Zero takes the
	// drift as measured.
	StartFreqSigmaPPB float64
	// MaxFreqPPB clamps the frequency correction (the kernel allows 500 ppm).
	MaxFreqPPB float64
	// StableThresholdNs and StableCount: LockedStable once this many
	// consecutive offsets are within the threshold.
	StableThresholdNs float64
	StableCount       int

	// SpikeFilter enables rejection of late (positive) outliers once
	// locked. A sample is a spike when it exceeds the median of the last
	// SpikeWindow accepted offsets by more than SpikeSigmas robust standard
	// deviations (1.4826·MAD) and by at least SpikeFloorNs.
	SpikeFilter  bool
	SpikeWindow  int
	SpikeSigmas  float64
	SpikeFloorNs float64
	// SpikeMaxRun: after this many consecutive rejections the next sample
	// is accepted anyway (a real phase jump, not a spike).
	SpikeMaxRun int
	// SpikeResetGapS: after a gap in samples longer than this (seconds) the
	// spike filter forgets its window and re-arms on fresh samples.
	SpikeResetGapS float64
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		StepThresholdNs:   128e6,
		RelockAfter:       3,
		RelockAgreeNs:     1e6,
		StartSamples:      7,
		StartFreqSigmaPPB: 200e3,
		MaxFreqPPB:        500e3,
		StableThresholdNs: 10e3,
		StableCount:       10,
		SpikeFilter:       true,
		SpikeWindow:       31,
		SpikeSigmas:       6,
		SpikeFloorNs:      500,
		SpikeMaxRun:       4,
		SpikeResetGapS:    10,
	}
}
