package sim

import (
	"fmt"
	"time"
)

// Position is where the simulated antenna is.
type Position struct {
	Lat, Lon, Alt float64 // degrees, degrees, metres
}

// Epoch writes the NMEA 0183 sentences a receiver sends for UTC second t:
// RMC, GGA and ZDA with GP talker, correct checksums and CRLF endings.
// valid=false produces a receiver without a fix (RMC status V, GGA quality 0).
func Epoch(t time.Time, p Position, valid bool) []byte {
	t = t.UTC()
	hms := fmt.Sprintf("%02d%02d%02d.00", t.Hour(), t.Minute(), t.Second())
	lat, ns := ddmm(p.Lat, 2), "N"
	if p.Lat < 0 {
		ns = "S"
	}
	lon, ew := ddmm(p.Lon, 3), "E"
	if p.Lon < 0 {
		ew = "W"
	}
	status, mode, quality, sats := "A", "A", 1, 10
	if !valid {
		status, mode, quality, sats = "V", "N", 0, 0
	}
	date := fmt.Sprintf("%02d%02d%02d", t.Day(), int(t.Month()), t.Year()%100)
	var b []byte
	b = sentence(b, fmt.Sprintf("GPRMC,%s,%s,%s,%s,%s,%s,0.0,0.0,%s,,,%s", hms, status, lat, ns, lon, ew, date, mode))
	b = sentence(b, fmt.Sprintf("GPGGA,%s,%s,%s,%s,%s,%d,%02d,0.9,%.1f,M,36.0,M,,", hms, lat, ns, lon, ew, quality, sats, p.Alt))
	b = sentence(b, fmt.Sprintf("GPZDA,%s,%02d,%02d,%04d,00,00", hms, t.Day(), int(t.Month()), t.Year()))
	return b
}

// sentence appends $body*HH\r\n.
func sentence(b []byte, body string) []byte {
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	return fmt.Appendf(b, "$%s*%02X\r\n", body, sum)
}

// ddmm formats degrees as NMEA (d)ddmm.mmmm with degWidth degree digits.
func ddmm(deg float64, degWidth int) string {
	if deg < 0 {
		deg = -deg
	}
	d := int(deg)
	m := (deg - float64(d)) * 60
	return fmt.Sprintf("%0*d%07.4f", degWidth, d, m)
}
