package integrity

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The named oscillator classes the PPS check can start from, in
// PowerLaw's notation without the timestamp term R, which follows the PPS
// source. Both are the oscillators of the simulation benches
// (timing/simbench), so every figure the benches publish for them holds
// for a board configured with its class.
var (
	// ClassTCXO: white FM 0.1 ns/√s, random walk 0.005 ppb/√s, a 5 ppb
	// temperature swing over 4 h. The appliance's default.
	ClassTCXO = PowerLaw{Qwf: 0.01, Qrw: 2.5e-5, DriftPPBPerS: 2 * math.Pi * 5 / (4 * 3600)}
	// ClassXO: a cheap crystal next to an HVAC cycle: white FM 1 ns/√s,
	// random walk 0.05 ppb/√s, a 500 ppb swing over 20 min (±2.5 °C at
	// 200 ppb/°C).
	ClassXO = PowerLaw{Qwf: 1, Qrw: 2.5e-3, DriftPPBPerS: 2 * math.Pi * 500 / 1200}
)

// classes names the classes ParseClass accepts by name.
var classes = map[string]PowerLaw{"tcxo": ClassTCXO, "xo": ClassXO}

// ClassNames returns the names ParseClass accepts, sorted.
func ClassNames() []string { return slices.Sorted(maps.Keys(classes)) }

// Limits of a class given by its terms: far beyond any oscillator a
// timing board carries (a free-running RC oscillator wanders by ppm), so
// that a typo of a few orders of magnitude is refused rather than blinding
// the check.
const (
	maxClassWFM   = 1e3 // ns/√s
	maxClassRW    = 1e2 // ppb/√s
	maxClassDrift = 1e3 // ppb/s
)

// ParseClass returns the oscillator class s names: "tcxo" or "xo"
// (ClassNames), or the oscillator's own terms as a datasheet gives them,
// "wfm=W,rw=R,drift=D": white FM W ns/√s (the Allan deviation at 1 s, in
// ppb), random-walk FM R ppb/√s, and the largest normal rate of change of
// frequency D ppb/s (for a temperature swing of amplitude A ppb over a
// period of P s, 2π·A/P). Terms left out are zero; at least one of wfm and
// rw must be given. R, the timestamp noise, is left zero: the PPS source
// sets it.
func ParseClass(s string) (PowerLaw, error) {
	if c, ok := classes[s]; ok {
		return c, nil
	}
	if !strings.Contains(s, "=") {
		return PowerLaw{}, fmt.Errorf("unknown oscillator class %q: want %s, or wfm=NS_PER_SQRT_S,rw=PPB_PER_SQRT_S,drift=PPB_PER_S",
			s, strings.Join(ClassNames(), " or "))
	}
	var wfm, rw, drift float64
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		var dst *float64
		var limit float64
		switch k {
		case "wfm":
			dst, limit = &wfm, maxClassWFM
		case "rw":
			dst, limit = &rw, maxClassRW
		case "drift":
			dst, limit = &drift, maxClassDrift
		default:
			return PowerLaw{}, fmt.Errorf("oscillator term %q: want wfm, rw or drift", k)
		}
		if seen[k] {
			return PowerLaw{}, fmt.Errorf("oscillator term %s given twice", k)
		}
		seen[k] = true
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || !(x >= 0 && x <= limit) {
			return PowerLaw{}, fmt.Errorf("oscillator term %s=%q: want a number from 0 to %g", k, v, limit)
		}
		*dst = x
	}
	if wfm == 0 && rw == 0 {
		// The check's long lags would judge by the timestamp noise
		// alone and call the oscillator's first wander a spoofer.
		return PowerLaw{}, fmt.Errorf("oscillator class %q: no white FM (wfm) and no random walk (rw); every oscillator has one", s)
	}
	return PowerLaw{Qwf: wfm * wfm, Qrw: rw * rw, DriftPPBPerS: drift}, nil
}

// ClassString is the inverse of ParseClass, for logs: the class's name
// if it is a named one, else its terms (R, the PPS source's, left out).
func ClassString(c PowerLaw) string {
	c.R = 0
	for _, n := range ClassNames() {
		if classes[n] == c {
			return n
		}
	}
	return fmt.Sprintf("wfm=%g,rw=%g,drift=%g", math.Sqrt(c.Qwf), math.Sqrt(c.Qrw), c.DriftPPBPerS)
}
