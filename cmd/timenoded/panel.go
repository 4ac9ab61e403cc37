package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/gpio"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/timing"
)

// openPPS opens the pulse source: the kernel PPS device, or a GPIO pin
// timestamped in user space on boards without a kernel PPS driver.
func openPPS(cfg *config, clk clock.Clock) (pps.Source, error) {
	if cfg.ppsGPIO != "" {
		return pps.OpenGPIO(cfg.ppsGPIO, clk, pps.GPIOOptions{})
	}
	return pps.OpenKernel(cfg.ppsDevice, pps.KernelOptions{})
}

// ledState maps the discipline's state to the front panel's lock LED.
func ledState(s timing.State) gpio.LEDState {
	switch s {
	case timing.Locked:
		return gpio.LEDOn
	case timing.Acquiring, timing.Holdover:
		return gpio.LEDBlink
	default:
		return gpio.LEDOff
	}
}

// runPanel drives the optional front panel: the lock LED follows the
// discipline state; the receiver reset line is pulsed when the receiver
// has sent no usable NMEA for resetAfter, then at most every resetAfter.
func runPanel(ctx context.Context, cfg *config, disc *timing.Discipline, rx *gnss.Receiver, log *slog.Logger) error {
	var led *gpio.LED
	if cfg.ledGPIO != "" {
		pin, err := gpio.ByName(cfg.ledGPIO)
		if err != nil {
			return fmt.Errorf("lock LED: %w", err)
		}
		if led, err = gpio.NewLED(pin, gpio.LEDOptions{}); err != nil {
			return fmt.Errorf("lock LED %s: %w", cfg.ledGPIO, err)
		}
		go func() { _ = led.Run(ctx) }()
	}
	var reset *gpio.ResetLine
	if cfg.resetGPIO != "" {
		pin, err := gpio.ByName(cfg.resetGPIO)
		if err != nil {
			return fmt.Errorf("receiver reset line: %w", err)
		}
		if reset, err = gpio.NewResetLine(pin, gpio.ResetOptions{}); err != nil {
			return fmt.Errorf("receiver reset line %s: %w", cfg.resetGPIO, err)
		}
	}
	if led == nil && reset == nil {
		return nil
	}
	const resetAfter = 2 * time.Minute
	var badSince, lastReset time.Time
	t := time.NewTicker(250 * time.Millisecond)
	go func() {
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if led != nil {
					led.Set(ledState(disc.Status().State))
				}
				if reset == nil {
					continue
				}
				if rx.Stats().State == gnss.StateOK {
					badSince = time.Time{}
					continue
				}
				if badSince.IsZero() {
					badSince = now
				}
				if now.Sub(badSince) > resetAfter && now.Sub(lastReset) > resetAfter {
					lastReset = now
					log.Warn("GNSS receiver silent; pulsing its reset line", "silent_for", now.Sub(badSince).Round(time.Second))
					if err := reset.Pulse(ctx); err != nil {
						log.Error("receiver reset failed", "err", err)
					}
				}
			}
		}
	}()
	return nil
}
