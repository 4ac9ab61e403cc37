// Package gnss reads NMEA 0183 from a GNSS receiver: a framer that splits the
// byte stream into sentences, checksum validation, parsing with
// github.com/adrianmo/go-nmea, assembly of sentences into per-second epochs
// (Fix), and the serial port reader that survives unplugs and garbage.
//
// The pieces, from the wire up:
//
//   - Framer (framer.go) cuts bytes into sentences: "$" and "!" start one;
//     CR, LF or the next delimiter end it; garbage, lone delimiters and runs
//     over MaxSentence (1 KiB) are dropped and counted. No I/O.
//   - VerifyChecksum (checksum.go) classifies a sentence as ok (upper or
//     lower-case hex), bad or missing.
//   - Parser (parse.go) decodes with go-nmea, sorting failures into
//     ErrUnknownType and ErrUnparsable; it never panics on line noise.
//   - Assembler (epoch.go) groups sentences into one Fix per UTC second and
//     flags dates that must not be used as time (CheckDate: receiver default
//     dates, GPS week rollover, implausible two-digit years).
//   - Receiver (receiver.go, ingest.go, port.go) opens the device through
//     github.com/tarm/serial, runs the pieces above, reopens the device with
//     capped, jittered backoff when it fails, and reports Stats and a State
//     ("ok", "no_data", "not_nmea", "disconnected").
//   - Sky (sky.go, skyview.go, constellation.go) models what the receiver
//     says about its satellites, fix and antenna from GSV (satellites in
//     view and CN0, groups assembled part by part), GSA (satellites used,
//     fix type, DOP), GGA (fix quality, altitude) and TXT (u-blox style
//     ANTSTATUS); what goes stale drops out, impossible values are
//     counted. Receiver.Sky returns its SkyView.
//   - Tally (tally.go) counts sentences by the rules of
//     testdata/nmea/README.md; StripComments, Bursts and Replay (replay.go)
//     feed a capture into a pty with realistic pacing, for tests and for
//     `timenodectl nmea replay`.
//
// Only the Receiver logs; everything else is pure and takes time as input.
package gnss
