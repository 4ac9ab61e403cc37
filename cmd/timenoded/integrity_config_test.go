package main

import (
	"io"
	"testing"

	"github.com/aunsorm/timenode/netsvc/roughtime"
)

func TestParseIntegrityFlags(t *testing.T) {
	const key = "iBVjxg/1j7y1+kQUTBYdTabxCppesU/07D4PMDJk2WA=" // 32 bytes
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, c *config)
		wantErr bool
	}{
		{"defaults: monitor, survey, no witnesses", nil, func(t *testing.T, c *config) {
			if c.integrityMode != integrityMonitor || c.antenna != nil || len(c.witnesses) != 0 {
				t.Errorf("mode %q antenna %v witnesses %d", c.integrityMode, c.antenna, len(c.witnesses))
			}
		}, false},
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
