package gnss

import (
	"errors"
	"time"
)

// ingest frames and parses bytes that arrived at at, updating counters,
// the state and the epoch. It reports whether a valid sentence was seen.
func (r *Receiver) ingest(data []byte, at time.Time) (valid bool) {
	var ok, bad, missing, unparsable, unknown uint64
	r.framer.Feed(data, at, func(raw []byte, started time.Time) {
		st, _ := VerifyChecksum(raw)
		if r.cfg.Tap != nil {
			r.cfg.Tap(raw, st)
		}
		switch st {
		case ChecksumBad:
			bad++
			return
		case ChecksumMissing:
			missing++
			if !r.cfg.AllowMissingChecksum {
				return
			}
		}
		valid = true
		r.sinceValid = 0
		s, err := r.parser.Parse(raw)
		switch {
		case errors.Is(err, ErrUnknownType):
			unknown++
			return
		case err != nil:
			unparsable++
			return
		}
		ok++
		r.skyMu.Lock()
		r.sky.Add(s, started)
		r.skyMu.Unlock()
		if f, done := r.asm.Add(s, started); done {
			r.pending = append(r.pending, f)
		}
	})
	dropped := r.framer.Dropped() - r.framerDropped
	r.framerDropped = r.framer.Dropped()
	if !valid {
		r.sinceValid += len(data)
	}

	r.mu.Lock()
	s := &r.stats
	s.BytesRead += uint64(len(data))
	s.SentencesOK += ok
	s.ChecksumBad += bad
	s.ChecksumMissing += missing
	s.Unparsable += unparsable
	s.UnknownType += unknown
	s.BytesDropped += dropped
	s.Epochs += uint64(len(r.pending))
	prev := s.State
	switch {
	case valid:
		s.State = StateOK
	case r.sinceValid >= r.cfg.NotNMEABytes && prev != StateNotNMEA:
		s.State = StateNotNMEA
		s.LastError = errNotNMEA(r.sinceValid).Error()
	}
	state := s.State
	r.mu.Unlock()

	switch {
	case state == prev:
	case state == StateOK:
		r.log.Info("receiving NMEA", "previous_state", prev)
	case state == StateNotNMEA:
		r.log.Warn(errNotNMEA(r.sinceValid).Error(), "bytes", r.sinceValid, "baud", r.cfg.Baud)
	}
	return valid
}
