package gnss

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// StripComments returns capture without its comment lines (physical lines
// whose first byte is "#"), which are annotations in the gpsd captures and
// were never sent by a receiver; gpsfake skips them the same way. A last
// line without a terminator gets a LF, so the final sentence is complete.
func StripComments(capture []byte) []byte {
	out := make([]byte, 0, len(capture)+1)
	for len(capture) > 0 {
		line := capture
		if i := bytes.IndexByte(capture, '\n'); i >= 0 {
			line = capture[:i+1]
		}
		capture = capture[len(line):]
		if line[0] != '#' {
			out = append(out, line...)
		}
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out
}

// Burst is a run of capture lines a receiver sent for one second, and how
// long after the previous burst it is due.
type Burst struct {
	Data  []byte
	Delay time.Duration
}

// Bursts splits a comment-free capture into per-second bursts for paced
// replay. A new burst begins at the first line whose RMC, ZDA, GGA or GNS
// names a different second than the burst being built; its Delay is the
// difference, clamped to (0, 2 s] so a rollover or a gap in the capture
// does not stall the replay.
func Bursts(capture []byte) []Burst {
	var out []Burst
	cur := Burst{}
	curSec := -1
	for len(capture) > 0 {
		line := capture
		if i := bytes.IndexByte(capture, '\n'); i >= 0 {
			line = capture[:i+1]
		}
		capture = capture[len(line):]
		sec := lineSecond(line)
		if sec >= 0 && curSec >= 0 && sec != curSec {
			out = append(out, cur)
			d := time.Duration(sec-curSec) * time.Second
			if d <= 0 || d > 2*time.Second {
				d = time.Second
			}
			cur = Burst{Delay: d}
		}
		if sec >= 0 {
			curSec = sec
		}
		cur.Data = append(cur.Data, line...)
	}
	if len(cur.Data) > 0 {
		out = append(out, cur)
	}
	return out
}

// lineSecond returns the second of day named by the first time-bearing
// sentence with a valid checksum in line, or -1.
func lineSecond(line []byte) int {
	sec := -1
	var f Framer
	f.Feed(line, time.Time{}, func(raw []byte, _ time.Time) {
		if sec >= 0 {
			return
		}
		if st, _ := VerifyChecksum(raw); st != ChecksumOK {
			return
		}
		fields := strings.Split(string(raw[1:bytes.IndexByte(raw, '*')]), ",")
		if len(fields) < 2 || len(fields[0]) != 5 {
			return
		}
		switch fields[0][2:] {
		case "RMC", "ZDA", "GGA", "GNS":
			if t, ok := ParseTimeOfDay(fields[1]); ok {
				sec = t.Hour*3600 + t.Minute*60 + t.Second
			}
		}
	})
	return sec
}

// Replay writes bursts to w, waiting each burst's Delay divided by rate
// before writing it; rate <= 0 writes everything as fast as w accepts.
// It returns when all is written, on a write error, or when ctx is done.
func Replay(ctx context.Context, w io.Writer, bursts []Burst, rate float64) error {
	var t *time.Timer
	for i, b := range bursts {
		if rate > 0 && i > 0 {
			d := time.Duration(float64(b.Delay) / rate)
			if t == nil {
				t = time.NewTimer(d)
				defer t.Stop()
			} else {
				t.Reset(d)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, err := w.Write(b.Data); err != nil {
			return fmt.Errorf("gnss: replay burst %d: %w", i, err)
		}
	}
	return nil
}
