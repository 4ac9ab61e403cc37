package gnss

import "time"

// MaxSentence is the longest sentence the Framer delivers, delimiter
// included. NMEA 0183 allows 82 characters; real receivers exceed that
// (u-blox PUBX, Unicore, Teseo), so anything up to 1 KiB passes and longer
// runs are dropped as garbage.
const MaxSentence = 1024

// Framer splits a receiver byte stream into sentences. A sentence starts at
// each "$" or "!" and runs up to, not including, the next "$", "!", CR or LF;
// trailing spaces and tabs are trimmed. A lone delimiter (the first "$" of
// "$$GPRMC"), bytes outside any sentence (leading garbage, a half line at
// open, binary data) and sentences longer than MaxSentence are dropped and
// counted. NUL bytes are ordinary bytes: inside a sentence they spoil its
// checksum, outside one they are dropped.
//
// The Framer does no I/O and keeps no reference to the slices it is fed. The
// zero value is ready to use; it is not safe for concurrent use.
type Framer struct {
	buf      []byte
	in       bool // inside a sentence (buf starts with its delimiter)
	overflow bool // current sentence exceeded MaxSentence; discard to its end
	start    time.Time

	consumed, dropped, terminators uint64
}

// Feed consumes p, which arrived at time at, and calls emit for every
// sentence completed by it, in stream order. raw starts with the delimiter
// and excludes the terminator; it is only valid during the call. started is
// the at of the Feed call that delivered the sentence's first byte.
func (f *Framer) Feed(p []byte, at time.Time, emit func(raw []byte, started time.Time)) {
	f.consumed += uint64(len(p))
	for _, b := range p {
		switch b {
		case '$', '!':
			if f.in {
				f.finish(emit)
			}
			f.in, f.overflow, f.start = true, false, at
			f.buf = append(f.buf[:0], b)
		case '\r', '\n':
			f.terminators++
			if f.in {
				f.finish(emit)
			}
		default:
			switch {
			case !f.in:
				f.dropped++
			case f.overflow:
				f.dropped++
			case len(f.buf) >= MaxSentence:
				f.overflow = true
				f.dropped += uint64(len(f.buf)) + 1
				f.buf = f.buf[:0]
			default:
				f.buf = append(f.buf, b)
			}
		}
	}
}

// finish ends the current sentence, delivering it unless it overflowed or is
// a lone delimiter.
func (f *Framer) finish(emit func(raw []byte, started time.Time)) {
	f.in = false
	if f.overflow {
		f.overflow = false
		return
	}
	s := f.buf
	for len(s) > 1 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	f.dropped += uint64(len(f.buf) - len(s))
	if len(s) <= 1 {
		f.dropped += uint64(len(s))
		return
	}
	emit(s, f.start)
}

// Flush ends a sentence still open at the end of the stream (a capture whose
// last line has no terminator) and delivers it like Feed would.
func (f *Framer) Flush(emit func(raw []byte, started time.Time)) {
	if f.in {
		f.finish(emit)
	}
}

// Reset discards any partial sentence, as after reopening the device; the
// discarded bytes count as dropped.
func (f *Framer) Reset() {
	if f.in && !f.overflow {
		f.dropped += uint64(len(f.buf))
	}
	f.in, f.overflow = false, false
	f.buf = f.buf[:0]
}

// Consumed is the number of bytes fed so far.
func (f *Framer) Consumed() uint64 { return f.consumed }

// Dropped is the number of bytes discarded so far: garbage outside
// sentences, lone delimiters, trimmed trailing blanks and overlong sentences.
func (f *Framer) Dropped() uint64 { return f.dropped }

// Terminators is the number of CR and LF bytes seen.
func (f *Framer) Terminators() uint64 { return f.terminators }

// Pending is the number of bytes held for a sentence not yet terminated.
func (f *Framer) Pending() int {
	if !f.in || f.overflow {
		return 0
	}
	return len(f.buf)
}
