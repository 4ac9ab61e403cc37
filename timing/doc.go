// Package timing disciplines the local clock from GNSS: it pairs each PPS
// edge with the UTC second the NMEA stream names for it, feeds the offsets
// to the servo (package timing/servo), steers the clock, runs the state
// machine FREERUN → ACQUIRING → LOCKED → HOLDOVER → UNSYNCHRONIZED, and
// publishes an immutable Status (state, offset, frequency, jitter, error
// bound) through an atomic pointer for the network services to read.
package timing
