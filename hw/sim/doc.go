// Package sim is the simulated hardware behind `timenoded --sim`: a GNSS
// receiver that writes real NMEA 0183 into a serial line (a pty in the
// daemon) a few hundred milliseconds after each second, and a PPS source
// whose edges are timestamped by a simulated oscillator. "True time" is the
// reference clock the caller passes, normally the host clock, which the
// simulation only reads.
package sim
