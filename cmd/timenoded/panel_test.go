package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/hw/gpio"
	"github.com/aunsorm/timenode/timing"
)

func TestLEDFollowsTheDiscipline(t *testing.T) {
	want := map[timing.State]gpio.LEDState{
		timing.Freerun: gpio.LEDOff, timing.Acquiring: gpio.LEDBlink, timing.Locked: gpio.LEDOn,
		timing.Holdover: gpio.LEDBlink, timing.Unsynchronized: gpio.LEDOff,
	}
	for _, s := range timing.States() {
		if got := ledState(s); got != want[s] {
			t.Errorf("%v: LED %v, want %v", s, got, want[s])
		}
	}
}

// This machine has no GPIO controller: a configured panel pin must fail
// the start with a message naming the pin's role, not be ignored.
func TestPanelPinsThatDoNotExist(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		cfg  config
		want string
	}{
		{"lock LED", config{ledGPIO: "GPIO4242"}, "lock LED"},
		{"reset line", config{resetGPIO: "GPIO4243"}, "receiver reset line"},
		{"PPS", config{ppsGPIO: "GPIO4244"}, "GPIO4244"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.cfg.ppsGPIO != "" {
				_, err = openPPS(&tc.cfg, simTruth)
			} else {
				err = runPanel(context.Background(), &tc.cfg, nil, nil, log)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one naming %q", err, tc.want)
			}
		})
	}
	if err := runPanel(context.Background(), &config{}, nil, nil, log); err != nil {
		t.Fatalf("no panel configured: %v", err)
	}
}
