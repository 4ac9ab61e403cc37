package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/netsvc/roughtime"
	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/timing/integrity"
)

func TestParseIntegrityFlags(t *testing.T) {
	const key = "iBVjxg/1j7y1+kQUTBYdTabxCppesU/07D4PMDJk2WA=" // 32 bytes
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, c *config)
		wantErr bool
	}{
		{"defaults: monitor, survey, no witnesses, the TCXO class", nil, func(t *testing.T, c *config) {
			if c.integrityMode != integrityMonitor || c.antenna != nil || len(c.witnesses) != 0 {
				t.Errorf("mode %q antenna %v witnesses %d", c.integrityMode, c.antenna, len(c.witnesses))
			}
			if c.oscillator != integrity.ClassTCXO || c.oscillatorSet {
				t.Errorf("oscillator %+v (given: %v), want the TCXO class by default", c.oscillator, c.oscillatorSet)
			}
		}, false},
		{"cheap crystal", []string{"--oscillator", "xo"}, func(t *testing.T, c *config) {
			if c.oscillator != integrity.ClassXO || !c.oscillatorSet {
				t.Errorf("oscillator %+v (given: %v), want the XO class", c.oscillator, c.oscillatorSet)
			}
		}, false},
		{"datasheet terms", []string{"--oscillator=wfm=0.01,rw=0.0005,drift=0.0002"}, func(t *testing.T, c *config) {
			if want := (integrity.PowerLaw{Qwf: 1e-4, Qrw: 2.5e-7, DriftPPBPerS: 2e-4}); c.oscillator != want {
				t.Errorf("oscillator %+v, want %+v", c.oscillator, want)
			}
		}, false},
		{"unknown oscillator", []string{"--oscillator", "ocxo"}, nil, true},
		{"oscillator without noise", []string{"--oscillator", "drift=0.1"}, nil, true},
		{"enforce", []string{"--integrity", "enforce"}, func(t *testing.T, c *config) {
			if c.integrityMode != integrityEnforce {
				t.Errorf("mode %q", c.integrityMode)
			}
		}, false},
		{"unknown mode", []string{"--integrity", "strict"}, nil, true},
		{"antenna", []string{"--antenna-position", "41.0151, 28.9795,40"}, func(t *testing.T, c *config) {
			if a := c.antenna; a == nil || a.LatDeg != 41.0151 || a.LonDeg != 28.9795 || a.AltM != 40 || !a.Valid {
				t.Errorf("antenna %+v", a)
			}
		}, false},
		{"antenna off the globe", []string{"--antenna-position", "91,0,0"}, nil, true},
		{"antenna without altitude", []string{"--antenna-position", "41,29"}, nil, true},
		{"two witnesses", []string{"--witness-roughtime", "rt1.example:2002=" + key, "--witness-roughtime", "[::1]:2002=" + key + ",google"},
			func(t *testing.T, c *config) {
				if len(c.witnesses) != 2 || c.witnesses[0].Addr != "rt1.example:2002" || c.witnesses[0].Version != roughtime.VersionDraft11 ||
					c.witnesses[1].Addr != "[::1]:2002" || c.witnesses[1].Version != roughtime.VersionGoogle || len(c.witnesses[1].PublicKey) != 32 {
					t.Errorf("witnesses %+v", c.witnesses)
				}
			}, false},
		{"witness without key", []string{"--witness-roughtime", "rt1.example:2002"}, nil, true},
		{"witness without port", []string{"--witness-roughtime", "rt1.example=" + key}, nil, true},
		{"witness with a short key", []string{"--witness-roughtime", "rt1.example:2002=AAAA"}, nil, true},
		{"witness with an unknown option", []string{"--witness-roughtime", "rt1.example:2002=" + key + ",nts"}, nil, true},
		{"witness interval too short", []string{"--witness-interval", "10ms"}, nil, true},
		{"simulated witnesses", []string{"--sim", "--sim-witnesses", "3"}, func(t *testing.T, c *config) {
			if c.simWitnesses != 3 {
				t.Errorf("simWitnesses %d", c.simWitnesses)
			}
		}, false},
		{"simulated witnesses without --sim", []string{"--sim-witnesses", "3"}, nil, true},
		{"too many simulated witnesses", []string{"--sim", "--sim-witnesses", "50"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(string) string { return "" }, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// TestIntegrityConfigOscillator: the PPS check judges by the configured
// class with the PPS source's timestamp noise; simulation by its own
// oscillator unless a class is given.
func TestIntegrityConfigOscillator(t *testing.T) {
	tests := []struct {
		name string
		args []string
		sim  bool
		want integrity.PowerLaw
	}{
		{"appliance default", nil, false, withR(integrity.ClassTCXO, ppsNoiseVariance(pps.QualityKernel))},
		{"cheap crystal, GPIO PPS", []string{"--oscillator", "xo", "--pps-gpio", "GPIO18"}, false, withR(integrity.ClassXO, ppsNoiseVariance(pps.QualityGPIO))},
		{"simulation", []string{"--sim"}, true, withR(simModel, ppsNoiseVariance(pps.QualitySimulated))},
		{"simulation judged as a cheap crystal", []string{"--sim", "--oscillator", "xo"}, true, withR(integrity.ClassXO, ppsNoiseVariance(pps.QualitySimulated))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			hw := &hardware{}
			if tt.sim {
				hw.sim = &simWorld{}
			}
			if got := integrityConfig(c, hw, nil).PPS.Model; got != tt.want {
				t.Errorf("PPS model %+v, want %+v", got, tt.want)
			}
		})
	}
}

// withR is class c with timestamp noise variance r (ns²).
func withR(c integrity.PowerLaw, r float64) integrity.PowerLaw {
	c.R = r
	return c
}

// TestBoardFlagsAreDaemonFlags: every flag a site.env may set is one the
// daemon declares, and integrity options the site check accepts start
// the daemon (a site.env that passes provisioning must not stop it).
func TestBoardFlagsAreDaemonFlags(t *testing.T) {
	fs := flag.NewFlagSet("timenoded", flag.ContinueOnError)
	declareFlags(fs, &config{})
	for name := range site.BoardFlags {
		if fs.Lookup(name) == nil {
			t.Errorf("site.BoardFlags has --%s, which timenoded does not declare", name)
		}
	}
	opts := "--integrity enforce --oscillator wfm=0.01,rw=0.0005,drift=0.0002 --witness-nts time.example:4460 --witness-interval 2m"
	env := "NTP_AUTHORITY_ID=time.test.example\nTIMENODED_OPTS=\"" + opts + "\"\n"
	if _, err := site.ParseEnv("site.env", []byte(env)); err != nil {
		t.Fatalf("site check refused %q: %v", opts, err)
	}
	if _, err := parseConfig(strings.Fields(opts), func(string) string { return "" }, io.Discard); err != nil {
		t.Fatalf("the site check accepted %q, the daemon refuses it: %v", opts, err)
	}
}
