package main

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/netsvc/roughtime"
	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/timing/integrity"
	"github.com/aunsorm/timenode/timing/leap"
)

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, " ") }

// Set implements flag.Value.
func (r *repeated) Set(v string) error {
	*r = append(*r, v)
	return nil
}

// finishIntegrity checks the integrity flags.
func (c *config) finishIntegrity() error {
	switch c.integrityMode {
	case integrityEnforce, integrityMonitor, integrityOff:
	default:
		return fmt.Errorf("--integrity %q: want enforce, monitor or off", c.integrityMode)
	}
	osc, err := integrity.ParseClass(c.oscillatorFlag)
	if err != nil {
		return fmt.Errorf("--oscillator: %w", err)
	}
	c.oscillator = osc
	if c.antennaFlag != "" {
		f, err := parseAntenna(c.antennaFlag)
		if err != nil {
			return fmt.Errorf("--antenna-position %q: %w", c.antennaFlag, err)
		}
		c.antenna = &f
	}
	for _, spec := range c.witnessFlags {
		w, err := parseRoughtimeWitness(spec)
		if err != nil {
			return fmt.Errorf("--witness-roughtime %q: %w", spec, err)
		}
		c.witnesses = append(c.witnesses, w)
	}
	for _, addr := range c.ntsWitnesses {
		if err := site.CheckHostPort(addr); err != nil {
			return fmt.Errorf("--witness-nts %q: %w (the NTS-KE address, usually port 4460)", addr, err)
		}
	}
	if c.ntsWitnessCA != "" {
		// Checked here to fail the start naming the flag; each material
		// set reads it again (witnessCA).
		if _, err := loadCAPool(c.ntsWitnessCA); err != nil {
			return fmt.Errorf("--witness-nts-ca: %w", err)
		}
	}
	if c.witnessInterval < time.Second {
		return fmt.Errorf("--witness-interval %v: want at least 1s", c.witnessInterval)
	}
	switch {
	case c.simWitnesses != 0 && !c.sim:
		return fmt.Errorf("--sim-witnesses %d: only with --sim (a real node's witnesses are --witness-roughtime and --witness-nts)", c.simWitnesses)
	case c.simWitnesses < 0 || c.simWitnesses > maxSimWitnesses:
		return fmt.Errorf("--sim-witnesses %d: want 0 to %d", c.simWitnesses, maxSimWitnesses)
	}
	return nil
}

// parseAntenna reads LAT,LON,ALT.
func parseAntenna(s string) (integrity.Fix, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return integrity.Fix{}, fmt.Errorf("want LAT,LON,ALT")
	}
	var v [3]float64
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return integrity.Fix{}, fmt.Errorf("want LAT,LON,ALT: %q is not a number", p)
		}
		v[i] = x
	}
	if math.Abs(v[0]) > 90 || math.Abs(v[1]) > 180 {
		return integrity.Fix{}, fmt.Errorf("latitude within ±90 and longitude within ±180 degrees")
	}
	return integrity.Fix{LatDeg: v[0], LonDeg: v[1], AltM: v[2], Valid: true}, nil
}

// parseRoughtimeWitness reads HOST:PORT=BASE64KEY[,google]: the server,
// its long-term Ed25519 public key, and the protocol (IETF draft 11 by
// default; Google's carries microseconds, which a drag check needs).
func parseRoughtimeWitness(spec string) (roughtimeWitness, error) {
	addr, rest, ok := strings.Cut(spec, "=")
	if !ok {
		return roughtimeWitness{}, fmt.Errorf("want HOST:PORT=BASE64KEY[,google]")
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return roughtimeWitness{}, fmt.Errorf("want HOST:PORT before '=': %v", err)
	}
	keyText, opt, _ := strings.Cut(rest, ",")
	key, err := base64.StdEncoding.DecodeString(keyText)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return roughtimeWitness{}, fmt.Errorf("want the server's Ed25519 public key in base64 (32 bytes)")
	}
	w := roughtimeWitness{Addr: addr, PublicKey: ed25519.PublicKey(key), Version: roughtime.VersionDraft11}
	switch opt {
	case "":
	case "google":
		w.Version = roughtime.VersionGoogle
	default:
		return roughtimeWitness{}, fmt.Errorf("unknown option %q: want google or nothing", opt)
	}
	return w, nil
}

// loadCAPool reads a PEM file of CA certificates; it must hold at least
// one.
func loadCAPool(path string) (*x509.CertPool, error) {
	b, err := keyfile.ReadRegular(path) // a reload rereads it: never block on it
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}

// simModel is the PPS check's model of the simulated oscillator, in
// bound.Noise's notation: random walk 0.5 ppb/√s (simWander), no
// temperature. The appliance's comes from --oscillator (integrity.ParseClass);
// the timestamp noise follows the PPS source.
var simModel = integrity.PowerLaw{Qrw: simWander * simWander}

// ppsNoiseVariance is the timestamp noise variance (ns²) of a PPS source.
func ppsNoiseVariance(q pps.Quality) float64 {
	if q == pps.QualityGPIO {
		return 1e8 // 10 µs user-space timestamps
	}
	return 1e6 // 1 µs: kernel PPS, and the simulation's noise
}

// guardConfigFor is the integrity configuration of the daemon.
func guardConfigFor(cfg *config, model integrity.PowerLaw, q pps.Quality, antenna *integrity.Fix, sched *leap.Schedule) guardConfig {
	model.R = ppsNoiseVariance(q)
	gc := guardConfig{
		Mode:     cfg.integrityMode,
		PPS:      integrity.PPSConfig{Model: model},
		Position: integrity.PositionConfig{Known: antenna},
		Receiver: integrity.ReceiverConfig{Leap: integrity.ScheduleTable{Schedule: sched}, NotBefore: gnss.DefaultMinDate},
	}
	return gc
}
