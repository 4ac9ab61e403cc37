// Package integrity decides whether the node may keep believing its GNSS
// receiver (issue 20, "honest time under attack").
//
// It has four detectors and one policy. Each detector takes small plain
// inputs that the daemon and the discipline already have and returns
// Evidence: which detector, which reason, at what level, with the numbers
// behind it.
//
//   - PPSDetector: the PPS phase against the free-running oscillator,
//     judged with the oscillator's Allan deviation (a phase step or a
//     frequency change the stability makes implausible, and a CUSUM for
//     slow frequency ramps).
//   - PositionDetector: a fixed appliance learns its antenna position by
//     survey-in, then holds it; a jump or drift beyond a radius is an alarm.
//   - ReceiverDetector: plausibility of receiver snapshots derived from
//     NMEA (satellites, CN0 pattern, fix, DOP, time jumps, GPS week
//     rollover, leap second, stuck time).
//   - CheckWitnesses: a quorum of independent, authenticated time sources
//     (Roughtime, NTS-secured NTP) bounds how far GNSS time may have moved.
//
// Policy turns evidence into the integrity state trusted, suspect or
// untrusted, with hysteresis, and reports every transition with the
// evidence that caused it. Counter counts evidence per detector and reason
// for the metrics.
//
// The witnesses ask a RoughtimeQuerier or an NTPQuerier, which the daemon
// adapts from netsvc/roughtime's and netsvc/nts/ntsclient's clients, so
// nothing here does network I/O or imports netsvc (the only I/O is the
// memory file, LoadMemory and SaveMemory); every function takes the
// current time as an argument, nothing reads the wall clock, nothing logs. docs/INTEGRITY.md
// has the threat model, the intended wiring into the daemon and the bench
// figures (make bench-integrity).
package integrity
