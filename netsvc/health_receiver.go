package netsvc

import (
	"time"

	"github.com/aunsorm/timenode/hw/gnss"
)

// ReceiverSource is what /health and the metrics read of the GNSS
// receiver; *gnss.Receiver is one.
type ReceiverSource interface {
	Stats() gnss.Stats
	Sky() gnss.SkyView
}

// HealthReceiver is the receiver's view in /health: what its GSV, GSA,
// GGA and TXT sentences said recently. Figures it does not know are null.
type HealthReceiver struct {
	// Line is the serial line's state: ok, no_data, not_nmea, disconnected.
	Line string `json:"line"`
	// FixType from GSA: unknown, none, 2d, 3d.
	FixType string `json:"fix_type"`
	// FixQuality from GGA: 0 none, 1 GPS, 2 DGPS, 4 RTK, ...
	FixQuality *int `json:"fix_quality"`
	// SatellitesUsed is GGA's count of satellites in the fix.
	SatellitesUsed *int     `json:"satellites_used"`
	PDOP           *float64 `json:"pdop"`
	HDOP           *float64 `json:"hdop"`
	VDOP           *float64 `json:"vdop"`
	AltitudeM      *float64 `json:"altitude_m"`
	// Antenna: ok, open, short, or unknown when the receiver never
	// reported; AntennaReported is when it last did (RFC 3339).
	Antenna         string `json:"antenna"`
	AntennaReported string `json:"antenna_reported,omitempty"`
	// Updated is when the newest sentence in this view came (RFC 3339),
	// empty when everything went stale.
	Updated        string                `json:"updated,omitempty"`
	Constellations []HealthConstellation `json:"constellations"`
	Satellites     []HealthSatellite     `json:"satellites"`
}

// HealthConstellation sums one constellation's satellites.
type HealthConstellation struct {
	Name        string  `json:"name"`
	InView      int     `json:"in_view"`
	Tracked     int     `json:"tracked"`
	Used        int     `json:"used"`
	CN0MeanDBHz float64 `json:"cn0_mean_dbhz"`
	CN0MaxDBHz  float64 `json:"cn0_max_dbhz"`
}

// HealthSatellite is one satellite in view.
type HealthSatellite struct {
	Constellation string `json:"constellation"`
	PRN           int    `json:"prn"`
	ElevationDeg  *int   `json:"elevation_deg"`
	AzimuthDeg    *int   `json:"azimuth_deg"`
	CN0DBHz       int    `json:"cn0_dbhz"` // 0: not tracked
	Used          bool   `json:"used"`
}

// NewHealthReceiver turns the receiver's line state and view into the
// /health object.
func NewHealthReceiver(line gnss.Stats, v gnss.SkyView) *HealthReceiver {
	h := &HealthReceiver{Line: line.State, FixType: v.FixType.String(), Antenna: v.Antenna.String(),
		Constellations: []HealthConstellation{}, Satellites: []HealthSatellite{}}
	if v.FixQuality >= 0 {
		h.FixQuality = ptr(v.FixQuality)
	}
	if v.SatellitesUsed >= 0 {
		h.SatellitesUsed = ptr(v.SatellitesUsed)
	}
	for _, d := range []struct {
		v   float64
		dst **float64
	}{{v.PDOP, &h.PDOP}, {v.HDOP, &h.HDOP}, {v.VDOP, &h.VDOP}} {
		if d.v > 0 {
			*d.dst = ptr(d.v)
		}
	}
	if v.HasAltitude {
		h.AltitudeM = ptr(v.Altitude)
	}
	if !v.AntennaAt.IsZero() {
		h.AntennaReported = v.AntennaAt.UTC().Format(time.RFC3339)
	}
	if !v.Updated.IsZero() {
		h.Updated = v.Updated.UTC().Format(time.RFC3339Nano)
	}
	for _, c := range v.Constellations {
		h.Constellations = append(h.Constellations, HealthConstellation{Name: c.Name, InView: c.InView, Tracked: c.Tracked,
			Used: c.Used, CN0MeanDBHz: c.CN0Mean, CN0MaxDBHz: c.CN0Max})
	}
	for _, s := range v.Satellites {
		hs := HealthSatellite{Constellation: s.Constellation, PRN: s.PRN, CN0DBHz: s.CN0, Used: s.Used}
		if s.HasPosition {
			hs.ElevationDeg, hs.AzimuthDeg = ptr(s.Elevation), ptr(s.Azimuth)
		}
		h.Satellites = append(h.Satellites, hs)
	}
	return h
}

func ptr[T any](v T) *T { return &v }
