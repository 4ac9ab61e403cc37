package integrity

import (
	"math"
	"slices"
	"time"
)

// Reasons of the position detector.
const (
	// ReasonPositionJump: consecutive fixes left the held position by
	// more than the radius at once (a spoofer that does not know where
	// the antenna is, a meacon far away).
	ReasonPositionJump = "position_jump"
	// ReasonPositionDrift: the mean of the recent fixes wandered beyond
	// the radius (a spoofer walking the position away slowly).
	ReasonPositionDrift = "position_drift"
)

// PositionReasons lists the position detector's reasons.
var PositionReasons = []string{ReasonPositionJump, ReasonPositionDrift}

// Fix is one position solution of the receiver (GGA/GNS): WGS84 latitude
// and longitude in degrees, altitude in metres (the same datum every time:
// the detector only compares fixes with each other).
type Fix struct {
	LatDeg, LonDeg, AltM float64
	// Valid is false for a fix the receiver marks invalid; such fixes
	// are ignored.
	Valid bool
}

// ECEF returns the fix in Earth-centred, Earth-fixed coordinates (m).
func (f Fix) ECEF() [3]float64 {
	const a, e2 = 6378137.0, 6.69437999014e-3 // WGS84
	lat, lon := f.LatDeg*math.Pi/180, f.LonDeg*math.Pi/180
	n := a / math.Sqrt(1-e2*math.Sin(lat)*math.Sin(lat))
	return [3]float64{
		(n + f.AltM) * math.Cos(lat) * math.Cos(lon),
		(n + f.AltM) * math.Cos(lat) * math.Sin(lon),
		(n*(1-e2) + f.AltM) * math.Sin(lat),
	}
}

// enu returns the east, north, up components of the ECEF difference
// p − ref at the reference latitude and longitude.
func enu(ref Fix, p [3]float64) (e, n, u float64) {
	r := ref.ECEF()
	dx, dy, dz := p[0]-r[0], p[1]-r[1], p[2]-r[2]
	lat, lon := ref.LatDeg*math.Pi/180, ref.LonDeg*math.Pi/180
	sl, cl := math.Sin(lat), math.Cos(lat)
	so, co := math.Sin(lon), math.Cos(lon)
	e = -so*dx + co*dy
	n = -sl*co*dx - sl*so*dy + cl*dz
	u = cl*co*dx + cl*so*dy + sl*dz
	return e, n, u
}

// PositionConfig configures a PositionDetector. Zero fields take the
// defaults.
type PositionConfig struct {
	// Known skips the survey: the installer measured the antenna.
	Known *Fix
	// SurveyFixes is how many valid fixes the survey-in averages
	// (default 3600, an hour at 1 Hz).
	SurveyFixes int
	// Radius is the horizontal distance from the held position that
	// alarms (default 50 m); VerticalRadius the vertical one (default
	// twice Radius: GNSS height is about twice as noisy).
	Radius, VerticalRadius float64
	// JumpConfirm is how many consecutive fixes beyond the radius make a
	// jump (default 3, so that one wild fix does not).
	JumpConfirm int
	// DriftWindow is how many recent fixes are averaged for the drift
	// test (default 60).
	DriftWindow int
}

func (c PositionConfig) withDefaults() PositionConfig {
	if c.SurveyFixes <= 0 {
		c.SurveyFixes = 3600
	}
	if c.Radius <= 0 {
		c.Radius = 50
	}
	if c.VerticalRadius <= 0 {
		c.VerticalRadius = 2 * c.Radius
	}
	if c.JumpConfirm <= 0 {
		c.JumpConfirm = 3
	}
	if c.DriftWindow <= 0 {
		c.DriftWindow = 60
	}
	return c
}

// PositionDetector learns a fixed antenna's position by survey-in (or
// takes it from config), then holds it and alarms when fixes leave it.
type PositionDetector struct {
	cfg    PositionConfig
	survey [][3]float64
	held   *Fix
	heldP  [3]float64
	outRun int
	// The first fix of the current run outside, the last fix inside.
	firstOut, lastIn [3]float64
	haveIn           bool
	recent           [][3]float64
}

// NewPositionDetector returns a detector that surveys unless cfg.Known is
// set.
func NewPositionDetector(cfg PositionConfig) *PositionDetector {
	cfg = cfg.withDefaults()
	d := &PositionDetector{cfg: cfg}
	if cfg.Known != nil {
		d.hold(*cfg.Known)
	}
	return d
}

// Held returns the held position, or false while surveying.
func (d *PositionDetector) Held() (Fix, bool) {
	if d.held == nil {
		return Fix{}, false
	}
	return *d.held, true
}

// SurveyProgress returns how many fixes of the survey are in.
func (d *PositionDetector) SurveyProgress() (have, want int) {
	if d.held != nil {
		return d.cfg.SurveyFixes, d.cfg.SurveyFixes
	}
	return len(d.survey), d.cfg.SurveyFixes
}

func (d *PositionDetector) hold(f Fix) {
	d.held = &f
	d.heldP = f.ECEF()
}

// Observe takes one fix seen at now.
func (d *PositionDetector) Observe(now time.Time, f Fix) []Evidence {
	if !f.Valid || math.IsNaN(f.LatDeg+f.LonDeg+f.AltM) || math.Abs(f.LatDeg) > 90 || math.Abs(f.LonDeg) > 180 {
		return nil
	}
	p := f.ECEF()
	if d.held == nil {
		d.survey = append(d.survey, p)
		if len(d.survey) >= d.cfg.SurveyFixes {
			d.hold(robustMean(d.survey))
			d.survey = nil
		}
		return nil
	}
	var evs []Evidence
	e, n, u := enu(*d.held, p)
	h := math.Hypot(e, n)
	if h > d.cfg.Radius || math.Abs(u) > d.cfg.VerticalRadius {
		if d.outRun == 0 {
			d.firstOut = p
		}
		d.outRun++
	} else {
		d.outRun, d.lastIn, d.haveIn = 0, p, true
	}
	if d.outRun >= d.cfg.JumpConfirm {
		// A jump if the fixes left in one step of more than half the
		// radius; a drift if they crept out.
		why := ReasonPositionDrift
		if !d.haveIn || dist(d.firstOut, d.lastIn) > d.cfg.Radius/2 {
			why = ReasonPositionJump
		}
		evs = append(evs, Evidence{At: now, Detector: DetectorPosition, Reason: why, Level: LevelUntrusted,
			Values: map[string]float64{"horizontal_m": h, "vertical_m": u, "fixes_outside": float64(d.outRun)}})
	}
	d.recent = append(d.recent, p)
	if len(d.recent) > d.cfg.DriftWindow {
		d.recent = d.recent[1:]
	}
	// The mean catches a position walked out slowly under noise that
	// keeps single fixes flickering in and out; it waits while a run of
	// fixes outside is being judged above.
	if len(d.recent) == d.cfg.DriftWindow && d.outRun == 0 {
		var m [3]float64
		for _, q := range d.recent {
			for i := range m {
				m[i] += q[i] / float64(len(d.recent))
			}
		}
		me, mn, mu := enu(*d.held, m)
		if mh := math.Hypot(me, mn); mh > d.cfg.Radius || math.Abs(mu) > d.cfg.VerticalRadius {
			evs = append(evs, Evidence{At: now, Detector: DetectorPosition, Reason: ReasonPositionDrift, Level: LevelUntrusted,
				Values: map[string]float64{"mean_horizontal_m": mh, "mean_vertical_m": mu, "window_fixes": float64(len(d.recent))}})
		}
	}
	return evs
}

func dist(a, b [3]float64) float64 {
	return math.Sqrt((a[0]-b[0])*(a[0]-b[0]) + (a[1]-b[1])*(a[1]-b[1]) + (a[2]-b[2])*(a[2]-b[2]))
}

// robustMean is the mean of the survey fixes within 3 robust standard
// deviations (1.4826·MAD of the distances, at least 1 m) of their
// coordinate-wise median, so that a few wild fixes do not move it.
func robustMean(ps [][3]float64) Fix {
	var med [3]float64
	col := make([]float64, len(ps))
	for i := range med {
		for j, p := range ps {
			col[j] = p[i]
		}
		med[i] = median(col)
	}
	dist := make([]float64, len(ps))
	for j, p := range ps {
		dist[j] = math.Sqrt((p[0]-med[0])*(p[0]-med[0]) + (p[1]-med[1])*(p[1]-med[1]) + (p[2]-med[2])*(p[2]-med[2]))
	}
	cut := 3 * math.Max(1.4826*median(slices.Clone(dist)), 1)
	var sum [3]float64
	var n float64
	for j, p := range ps {
		if dist[j] <= cut {
			for i := range sum {
				sum[i] += p[i]
			}
			n++
		}
	}
	for i := range sum {
		sum[i] /= n
	}
	return fromECEF(sum)
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// fromECEF converts back to latitude, longitude and altitude (Bowring's
// iteration; millimetre accuracy after a few rounds).
func fromECEF(p [3]float64) Fix {
	const a, e2 = 6378137.0, 6.69437999014e-3
	lon := math.Atan2(p[1], p[0])
	r := math.Hypot(p[0], p[1])
	lat := math.Atan2(p[2], r*(1-e2))
	var alt float64
	for range 6 {
		n := a / math.Sqrt(1-e2*math.Sin(lat)*math.Sin(lat))
		alt = r/math.Cos(lat) - n
		lat = math.Atan2(p[2], r*(1-e2*n/(n+alt)))
	}
	return Fix{LatDeg: lat * 180 / math.Pi, LonDeg: lon * 180 / math.Pi, AltM: alt, Valid: true}
}
