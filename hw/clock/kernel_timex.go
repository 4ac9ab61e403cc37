package clock

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Linux adjtimex ABI values (include/uapi/linux/timex.h). They are copied
// here, rather than taken from golang.org/x/sys/unix, so that the request
// construction below is pure and its tests run on every platform; a Linux
// test checks that they match the unix package.
const (
	adjFrequency = 0x0002
	adjMaxError  = 0x0004
	adjEstError  = 0x0008
	adjStatus    = 0x0010
	adjOffset    = 0x0001
	adjTAI       = 0x0080
	adjSetOffset = 0x0100
	adjNano      = 0x2000

	// maxScaledFreq is the kernel's frequency limit, 500 ppm with a 16-bit
	// binary fraction (MAXFREQ_SCALED seen from user space).
	maxScaledFreq = 500 << 16
	// maxTAIOffset is the largest TAI offset the kernel accepts.
	maxTAIOffset = 100000
	// maxErrorLimit is NTP_PHASE_LIMIT: the kernel clamps maxerror to 16 s
	// and marks the clock unsynchronised when it grows past it.
	maxErrorLimit = 16 * time.Second
)

// StatusBits is the kernel's NTP status word (the STA_* flags).
type StatusBits uint32

// Kernel status flags, as in include/uapi/linux/timex.h.
const (
	StaPLL       StatusBits = 0x0001 // kernel phase-locked loop enabled
	StaPPSFreq   StatusBits = 0x0002 // PPS frequency discipline
	StaPPSTime   StatusBits = 0x0004 // PPS time discipline
	StaFLL       StatusBits = 0x0008 // frequency-locked loop mode
	StaIns       StatusBits = 0x0010 // insert a leap second at the end of the day
	StaDel       StatusBits = 0x0020 // delete a leap second at the end of the day
	StaUnsync    StatusBits = 0x0040 // clock unsynchronised
	StaFreqHold  StatusBits = 0x0080 // hold the frequency
	StaPPSSignal StatusBits = 0x0100 // PPS signal present (read-only)
	StaPPSJitter StatusBits = 0x0200 // PPS jitter exceeded (read-only)
	StaPPSWander StatusBits = 0x0400 // PPS wander exceeded (read-only)
	StaPPSError  StatusBits = 0x0800 // PPS calibration error (read-only)
	StaClockErr  StatusBits = 0x1000 // clock hardware fault (read-only)
	StaNano      StatusBits = 0x2000 // offsets in nanoseconds (read-only)
	StaMode      StatusBits = 0x4000 // FLL rather than PLL (read-only)
	StaClk       StatusBits = 0x8000 // clock source B (read-only)
)

var statusNames = []struct {
	bit  StatusBits
	name string
}{
	{StaPLL, "PLL"}, {StaPPSFreq, "PPSFREQ"}, {StaPPSTime, "PPSTIME"},
	{StaFLL, "FLL"}, {StaIns, "INS"}, {StaDel, "DEL"}, {StaUnsync, "UNSYNC"},
	{StaFreqHold, "FREQHOLD"}, {StaPPSSignal, "PPSSIGNAL"},
	{StaPPSJitter, "PPSJITTER"}, {StaPPSWander, "PPSWANDER"},
	{StaPPSError, "PPSERROR"}, {StaClockErr, "CLOCKERR"}, {StaNano, "NANO"},
	{StaMode, "MODE"}, {StaClk, "CLK"},
}

// String lists the set flags the way adjtimex(8) names them, joined by "|".
func (b StatusBits) String() string {
	var names []string
	for _, s := range statusNames {
		if b&s.bit != 0 {
			names = append(names, s.name)
			b &^= s.bit
		}
	}
	if b != 0 {
		names = append(names, fmt.Sprintf("0x%x", uint32(b)))
	}
	if len(names) == 0 {
		return "0"
	}
	return strings.Join(names, "|")
}

// ClockState is the value clock_adjtime returns: the kernel's leap second
// state machine, or TIME_ERROR while the clock is unsynchronised.
type ClockState int

// Clock states, as in include/uapi/linux/timex.h.
const (
	TimeOK    ClockState = 0 // no leap second pending
	TimeIns   ClockState = 1 // a leap second will be inserted at midnight
	TimeDel   ClockState = 2 // a leap second will be deleted at midnight
	TimeOOP   ClockState = 3 // the inserted leap second is in progress
	TimeWait  ClockState = 4 // a leap second happened; STA_INS/STA_DEL still set
	TimeError ClockState = 5 // the clock is unsynchronised
)

// String names the state as in the kernel headers.
func (s ClockState) String() string {
	switch s {
	case TimeOK:
		return "TIME_OK"
	case TimeIns:
		return "TIME_INS"
	case TimeDel:
		return "TIME_DEL"
	case TimeOOP:
		return "TIME_OOP"
	case TimeWait:
		return "TIME_WAIT"
	case TimeError:
		return "TIME_ERROR"
	default:
		return fmt.Sprintf("ClockState(%d)", int(s))
	}
}

// KernelStatus is the kernel clock's discipline state as clock_adjtime
// reports it with mode 0.
type KernelStatus struct {
	State        ClockState    // the call's return value
	Status       StatusBits    // STA_* flags
	FrequencyPPB float64       // frequency correction, parts per billion
	MaxError     time.Duration // maxerror (the kernel grows it by 500 µs/s)
	EstError     time.Duration // esterror
	TAIOffset    int           // TAI-UTC in seconds, 0 if never set
	PLLOffset    time.Duration // phase offset the kernel PLL still has to slew
}

// Synchronized reports whether STA_UNSYNC is clear.
func (s KernelStatus) Synchronized() bool { return s.Status&StaUnsync == 0 }

// Leap returns the leap second the kernel is told about.
func (s KernelStatus) Leap() Leap {
	switch {
	case s.Status&StaIns != 0:
		return LeapInsert
	case s.Status&StaDel != 0:
		return LeapDelete
	default:
		return LeapNone
	}
}

// timexRequest holds the struct timex fields timenode writes. It is the pure
// half of every clock_adjtime call: built and tested without a kernel, then
// copied into unix.Timex by the Linux implementation.
type timexRequest struct {
	Modes    uint32
	Offset   int64 // ADJ_OFFSET
	Freq     int64 // scaled ppm (ppm << 16)
	MaxError int64 // microseconds
	EstError int64 // microseconds
	Status   int32
	Constant int64 // ADJ_TAI carries the TAI offset in the constant field
	Sec      int64 // ADJ_SETOFFSET seconds
	Nsec     int64 // ADJ_SETOFFSET nanoseconds, always in [0, 1e9)
}

// ppbToScaled converts parts per billion to the kernel's scaled ppm,
// clamped to ±500 ppm and rounded to the nearest unit (1/65.536 ppb).
func ppbToScaled(ppb float64) (int64, error) {
	if math.IsNaN(ppb) {
		return 0, fmt.Errorf("frequency %v ppb: not a number", ppb)
	}
	scaled := math.Round(ppb * 65536 / 1000)
	scaled = math.Max(-maxScaledFreq, math.Min(maxScaledFreq, scaled))
	return int64(scaled), nil
}

// scaledToPPB converts the kernel's scaled ppm to parts per billion.
func scaledToPPB(scaled int64) float64 { return float64(scaled) * 1000 / 65536 }

// frequencyRequest sets the frequency correction and nothing else.
func frequencyRequest(ppb float64) (timexRequest, error) {
	scaled, err := ppbToScaled(ppb)
	if err != nil {
		return timexRequest{}, err
	}
	return timexRequest{Modes: adjFrequency, Freq: scaled}, nil
}

// stepRequest steps the clock by d with nanosecond resolution. The kernel
// wants a non-negative nanosecond field, so -1.5 s becomes {-2 s, 0.5e9 ns}.
func stepRequest(d time.Duration) timexRequest {
	sec := int64(d / time.Second)
	nsec := int64(d % time.Second)
	if nsec < 0 {
		sec--
		nsec += int64(time.Second)
	}
	return timexRequest{Modes: adjSetOffset | adjNano, Sec: sec, Nsec: nsec}
}

// syncStatusBits is the status word timenode keeps while it disciplines the
// clock: the kernel PLL, FLL, PPS discipline and frequency hold stay off so
// that nothing in the kernel fights the servo; STA_UNSYNC is set unless the
// discipline is locked; STA_INS/STA_DEL follow the pending leap second.
func syncStatusBits(s SyncStatus) (StatusBits, error) {
	var bits StatusBits
	if !s.Synchronized {
		bits |= StaUnsync
	}
	switch s.Leap {
	case LeapNone:
	case LeapInsert:
		bits |= StaIns
	case LeapDelete:
		bits |= StaDel
	default:
		return 0, fmt.Errorf("leap indication %d: unknown", int(s.Leap))
	}
	return bits, nil
}

// syncRequest publishes the discipline's view of the clock: status word,
// maxerror and esterror (µs, rounded up so the bound is never understated),
// and the TAI offset when it is known (non-zero).
func syncRequest(s SyncStatus) (timexRequest, error) {
	bits, err := syncStatusBits(s)
	if err != nil {
		return timexRequest{}, err
	}
	if s.MaxError < 0 || s.EstError < 0 {
		return timexRequest{}, fmt.Errorf("error bounds %v/%v: negative", s.MaxError, s.EstError)
	}
	if s.TAIOffset < 0 || s.TAIOffset > maxTAIOffset {
		return timexRequest{}, fmt.Errorf("TAI offset %d s: out of range", s.TAIOffset)
	}
	req := timexRequest{
		Modes:    adjStatus | adjMaxError | adjEstError,
		Status:   int32(bits),
		MaxError: ceilMicros(min(s.MaxError, maxErrorLimit)),
		EstError: ceilMicros(min(s.EstError, maxErrorLimit)),
	}
	if s.TAIOffset != 0 {
		req.Modes |= adjTAI
		req.Constant = int64(s.TAIOffset)
	}
	return req, nil
}

// takeOverRequests are the two calls that hand the clock to timenode: the
// first enables the kernel PLL only to zero its residual phase offset (which
// a previous NTP daemon may have left slewing), the second turns the PLL off
// and marks the clock unsynchronised until the servo locks.
func takeOverRequests() [2]timexRequest {
	return [2]timexRequest{
		{Modes: adjOffset | adjStatus, Status: int32(StaPLL | StaUnsync), Offset: 0},
		{Modes: adjStatus, Status: int32(StaUnsync)},
	}
}

// ceilMicros converts d to whole microseconds, rounding up.
func ceilMicros(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	if d%time.Microsecond > 0 {
		us++
	}
	return us
}

// decodeStatus turns the fields of a mode-0 clock_adjtime answer into a
// KernelStatus.
func decodeStatus(state int, status int32, offset, freq, maxErrUS, estErrUS int64, tai int32) KernelStatus {
	pllOffset := time.Duration(offset) * time.Microsecond
	if StatusBits(uint32(status))&StaNano != 0 {
		pllOffset = time.Duration(offset)
	}
	return KernelStatus{
		PLLOffset:    pllOffset,
		State:        ClockState(state),
		Status:       StatusBits(uint32(status)),
		FrequencyPPB: scaledToPPB(freq),
		MaxError:     time.Duration(maxErrUS) * time.Microsecond,
		EstError:     time.Duration(estErrUS) * time.Microsecond,
		TAIOffset:    int(tai),
	}
}
