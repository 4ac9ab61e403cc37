// Package nmeareplay turns a recorded NMEA 0183 stream (testdata/nmea) into
// the receiver snapshots integrity.ReceiverDetector judges, for the capture
// replay test and the bench. It is not the daemon's NMEA path (hw/gnss
// owns that); captures have no local timestamps, so At is synthetic: one
// second per epoch.
package nmeareplay

import (
	"bytes"
	"strings"
	"time"

	nmea "github.com/adrianmo/go-nmea"

	"github.com/aunsorm/timenode/timing/integrity"
)

// Base is the synthetic local time of the first epoch.
var Base = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// Sentences splits a capture into sentences: "#" lines are comments; a
// sentence starts at "$" or "!" and runs to the next delimiter or line end
// (testdata/nmea/README.md's counting rules).
func Sentences(data []byte) []string {
	var out []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) > 0 && line[0] == '#' {
			continue
		}
		for _, part := range bytes.Split(line, []byte("\r")) {
			start := -1
			for i := 0; i <= len(part); i++ {
				if i < len(part) && part[i] != '$' && part[i] != '!' {
					continue
				}
				if start >= 0 && i-start > 1 {
					out = append(out, strings.TrimRight(string(part[start:i]), " \t"))
				}
				start = i
			}
		}
	}
	return out
}

// epoch gathers what one epoch said.
type epoch struct {
	time     time.Time
	seen     map[string]bool // addresses of time-bearing sentences in it
	rmc      bool
	rmcValid bool
	sim      bool
}

// builder carries the receiver's latest sky view across epochs, since
// receivers order GSA/GSV/GGA around RMC differently.
type builder struct {
	cur     *epoch
	n       int
	out     []integrity.Snapshot
	ggaQ    string
	ggaSats int
	hdop    float64
	pdop    float64
	dims    int
	used    map[string]int       // per talker (or GSA system id)
	inView  map[string]int       // per talker
	cn0     map[string][]float64 // per talker, the GSV cycle in progress
	cn0Done map[string][]float64 // per talker, the last complete cycle
}

// Snapshots replays a capture.
func Snapshots(data []byte) []integrity.Snapshot {
	b := &builder{used: map[string]int{}, inView: map[string]int{}, cn0: map[string][]float64{}, cn0Done: map[string][]float64{}}
	for _, s := range Sentences(data) {
		sen, err := nmea.Parse(s)
		if err != nil {
			continue // bad checksum, truncated, unknown: counted by hw/gnss, ignored here
		}
		b.add(sen)
	}
	b.flush()
	return b.out
}

func nmeaTime(d nmea.Date, t nmea.Time) (time.Time, bool) {
	if !d.Valid || !t.Valid || d.MM < 1 || d.MM > 12 || d.DD < 1 || d.DD > 31 {
		return time.Time{}, false
	}
	y := 2000 + d.YY
	if d.YY >= 80 {
		y = 1900 + d.YY
	}
	tm := time.Date(y, time.Month(d.MM), d.DD, t.Hour, t.Minute, t.Second, t.Millisecond*1e6, time.UTC)
	if tm.Day() != d.DD {
		return time.Time{}, false // 31 February
	}
	return tm, true
}

func (b *builder) add(s nmea.Sentence) {
	talker := s.TalkerID()
	switch v := s.(type) {
	case nmea.RMC:
		tm, ok := nmeaTime(v.Date, v.Time)
		b.timeBearing(s.Prefix(), tm, ok)
		b.cur.rmc = true
		b.cur.rmcValid = b.cur.rmcValid || v.Validity == nmea.ValidRMC
		b.cur.sim = b.cur.sim || v.FFAMode == "S"
	case nmea.ZDA:
		var tm time.Time
		ok := v.Time.Valid && v.Year >= 1980 && v.Month >= 1 && v.Month <= 12 && v.Day >= 1 && v.Day <= 31
		if ok {
			tm = time.Date(int(v.Year), time.Month(v.Month), int(v.Day), v.Time.Hour, v.Time.Minute, v.Time.Second, v.Time.Millisecond*1e6, time.UTC)
		}
		b.timeBearing(s.Prefix(), tm, ok)
	case nmea.GGA:
		b.ggaQ, b.ggaSats = v.FixQuality, int(v.NumSatellites)
		if v.HDOP > 0 {
			b.hdop = v.HDOP
		}
	case nmea.GSA:
		key := talker
		if v.SystemID > 0 {
			key = talker + string(rune('0'+v.SystemID))
		}
		n := 0
		for _, sv := range v.SV {
			if sv != "" {
				n++
			}
		}
		b.used[key] = n
		b.pdop, b.hdop = v.PDOP, v.HDOP
		switch v.FixType {
		case "1", "2", "3":
			b.dims = int(v.FixType[0] - '0')
		}
	case nmea.GSV:
		if v.MessageNumber <= 1 {
			b.cn0[talker] = nil
		}
		b.inView[talker] = int(v.NumberSVsInView)
		for _, in := range v.Info {
			if in.SNR > 0 {
				b.cn0[talker] = append(b.cn0[talker], float64(in.SNR))
			}
		}
		if v.MessageNumber == v.TotalMessages {
			b.cn0Done[talker] = b.cn0[talker]
		}
	}
}

// timeBearing starts a new epoch unless this sentence repeats the current
// epoch's time from an address not yet seen in it (GPRMC and GNRMC of one
// epoch); the same address twice is a new epoch even at the same time (a
// stuck receiver).
func (b *builder) timeBearing(addr string, tm time.Time, ok bool) {
	if b.cur != nil && ok && tm.Equal(b.cur.time) && !b.cur.seen[addr] {
		b.cur.seen[addr] = true
		return
	}
	b.flush()
	b.cur = &epoch{seen: map[string]bool{addr: true}}
	if ok {
		b.cur.time = tm
	}
}

func (b *builder) flush() {
	if b.cur == nil {
		return
	}
	e := b.cur
	b.cur = nil
	q := b.ggaQ
	valid := e.rmcValid
	if !e.rmc {
		valid = q >= "1" && q <= "5" && len(q) == 1
	}
	s := integrity.Snapshot{
		At:        Base.Add(time.Duration(b.n) * time.Second),
		Time:      e.time,
		FixValid:  valid,
		FixDims:   b.dims,
		Simulator: e.sim || q == "8",
		HDOP:      b.hdop,
		PDOP:      b.pdop,
	}
	b.n++
	used := 0
	for _, n := range b.used {
		used += n
	}
	if used == 0 {
		used = b.ggaSats
	}
	inView := 0
	for _, n := range b.inView {
		inView += n
	}
	s.Satellites = []integrity.Constellation{{System: "all", InView: inView, Used: used}}
	for _, c := range b.cn0Done {
		s.CN0 = append(s.CN0, c...)
	}
	b.out = append(b.out, s)
}
