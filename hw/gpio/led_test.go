package gpio

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// ledStep happens at a time since Run started: optionally a Set, then a
// check of whether the LED is lit.
type ledStep struct {
	at  time.Duration
	set *LEDState
	lit bool
}

func state(s LEDState) *LEDState { return &s }

func TestLEDRun(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		opts  LEDOptions
		steps []ledStep
	}{
		{
			name: "starts off",
			steps: []ledStep{
				{at: 0, lit: false},
				{at: 1700 * ms, lit: false},
			},
		},
		{
			name: "locked is steady on",
			steps: []ledStep{
				{at: 0, set: state(LEDOn), lit: true},
				{at: 250 * ms, lit: true},
				{at: 750 * ms, lit: true},
				{at: 2250 * ms, lit: true},
			},
		},
		{
			name: "blink toggles every half period",
			steps: []ledStep{
				{at: 0, set: state(LEDBlink), lit: true},
				{at: 250 * ms, lit: true},
				{at: 750 * ms, lit: false},
				{at: 1250 * ms, lit: true},
				{at: 1750 * ms, lit: false},
			},
		},
		{
			name: "active low with a fast blink",
			opts: LEDOptions{ActiveLow: true, BlinkPeriod: 200 * ms},
			steps: []ledStep{
				{at: 0, set: state(LEDBlink), lit: true},
				{at: 50 * ms, lit: true},
				{at: 150 * ms, lit: false},
				{at: 250 * ms, lit: true},
			},
		},
		{
			name: "acquiring then locked then lost",
			steps: []ledStep{
				{at: 0, set: state(LEDBlink), lit: true},
				{at: 600 * ms, lit: false},
				{at: 700 * ms, set: state(LEDOn), lit: true},
				{at: 1600 * ms, lit: true},
				{at: 2100 * ms, set: state(LEDOff), lit: false},
				{at: 3100 * ms, lit: false},
			},
		},
		{
			name: "holdover after lock restarts the blink lit",
			steps: []ledStep{
				{at: 0, set: state(LEDOn), lit: true},
				{at: 300 * ms, set: state(LEDBlink), lit: true},
				{at: 700 * ms, lit: true},
				{at: 900 * ms, lit: false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pin := newTracePin("LED")
				led, err := NewLED(pin, tt.opts)
				if err != nil {
					t.Fatalf("NewLED: %v", err)
				}
				litLevel := gpio.High
				if tt.opts.ActiveLow {
					litLevel = gpio.Low
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				start := time.Now()
				go func() { done <- led.Run(ctx) }()
				for _, st := range tt.steps {
					time.Sleep(time.Until(start.Add(st.at)))
					if st.set != nil {
						led.Set(*st.set)
					}
					synctest.Wait()
					if got := pin.Read() == litLevel; got != st.lit {
						t.Errorf("at %v: lit = %t, want %t (state %s)", st.at, got, st.lit, led.State())
					}
				}
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run = %v, want nil after cancel", err)
				}
				if pin.Read() == litLevel {
					t.Error("LED still lit after Run returned")
				}
			})
		})
	}
}

func TestLEDBlinkTrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newTracePin("LED")
		led, err := NewLED(pin, LEDOptions{BlinkPeriod: 400 * time.Millisecond})
		if err != nil {
			t.Fatalf("NewLED: %v", err)
		}
		led.Set(LEDBlink)
		ctx, cancel := context.WithTimeout(t.Context(), 900*time.Millisecond)
		defer cancel()
		if err := led.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		ms := time.Millisecond
		want := []change{
			{0, gpio.Low}, // NewLED
			{0, gpio.High},
			{200 * ms, gpio.Low},
			{400 * ms, gpio.High},
			{600 * ms, gpio.Low},
			{800 * ms, gpio.High},
			{900 * ms, gpio.Low}, // ctx done
		}
		got := pin.trace()
		if len(got) != len(want) {
			t.Fatalf("trace = %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("change %d = %v, want %v", i, got[i], want[i])
			}
		}
	})
}

func TestLEDPinErrors(t *testing.T) {
	pin := newTracePin("LED")
	pin.failOut = errPin
	if _, err := NewLED(pin, LEDOptions{}); !errors.Is(err, errPin) || err.Error() != "gpio: led LED(5): drive Low: pin write failed" {
		t.Errorf("NewLED on a failing pin = %v", err)
	}
	pin.failOut = nil
	led, err := NewLED(pin, LEDOptions{})
	if err != nil {
		t.Fatalf("NewLED: %v", err)
	}
	led.Set(LEDOn)
	pin.failOut = errPin
	if err := led.Run(t.Context()); !errors.Is(err, errPin) {
		t.Errorf("Run on a failing pin = %v, want %v", err, errPin)
	}
}

func TestLEDStateString(t *testing.T) {
	tests := []struct {
		s    LEDState
		want string
	}{
		{LEDOff, "off"}, {LEDBlink, "blink"}, {LEDOn, "on"}, {LEDState(7), "LEDState(7)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
