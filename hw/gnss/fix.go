package gnss

import "time"

// Fix is what the receiver said about one epoch (one UTC second).
type Fix struct {
	// UTC is the epoch's time as named by the receiver (RMC with date, or ZDA).
	UTC time.Time
	// Valid is true when the receiver reports a valid position fix (RMC
	// status A and, when present, a non-zero GGA quality) and the date is
	// plausible (none of the Flags below is set).
	Valid bool
	// Received is the local clock reading when the first byte of the epoch's
	// first sentence arrived; the timing package pairs it with PPS edges.
	Received time.Time
	// Satellites used in the fix (GGA), -1 if unknown.
	Satellites int
	// HDOP from GGA or GSA, 0 if unknown.
	HDOP float64
	// Latitude and Longitude in degrees, Altitude in metres (GGA).
	Latitude, Longitude, Altitude float64
	// Talker of the sentence that named the time (GP, GN, ...).
	Talker string
	// Flags records why the time is not trustworthy, if it is not.
	Flags DateFlags
}

// DateFlags marks dates a receiver sends that must never be used as time.
type DateFlags uint8

// Date defects detected in receiver output.
const (
	// FlagDefaultDate is the receiver's power-on default (e.g. 1980-01-05).
	FlagDefaultDate DateFlags = 1 << iota
	// FlagWeekRollover is a date exactly 1024 weeks (or a multiple) in the
	// past, the signature of the GPS week number rollover bug.
	FlagWeekRollover
	// FlagNoDate means only a time of day was seen, no date.
	FlagNoDate
)
