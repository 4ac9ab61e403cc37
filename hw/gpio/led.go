package gpio

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// LEDState is what the lock-status LED shows.
type LEDState int32

// LED states. The zero value is off.
const (
	LEDOff   LEDState = iota // not synchronised
	LEDBlink                 // acquiring lock, or holding over
	LEDOn                    // locked to GNSS
)

// String names the state.
func (s LEDState) String() string {
	switch s {
	case LEDOff:
		return "off"
	case LEDBlink:
		return "blink"
	case LEDOn:
		return "on"
	default:
		return fmt.Sprintf("LEDState(%d)", int32(s))
	}
}

// DefaultBlinkPeriod is the full on-and-off cycle of a blinking LED when
// LEDOptions.BlinkPeriod is zero.
const DefaultBlinkPeriod = time.Second

// LEDOptions configure a lock-status LED.
type LEDOptions struct {
	// ActiveLow lights the LED by driving the pin low.
	ActiveLow bool
	// BlinkPeriod is the full on-and-off cycle in LEDBlink; zero means
	// DefaultBlinkPeriod.
	BlinkPeriod time.Duration
}

// LED is the lock-status LED. Set may be called from any goroutine; Run
// drives the pin.
type LED struct {
	pin       gpio.PinOut
	lit, dark gpio.Level
	half      time.Duration

	state   atomic.Int32
	changed chan struct{} // capacity 1: a pending change for Run
}

// NewLED turns the LED off and returns it in state LEDOff.
func NewLED(pin gpio.PinOut, opts LEDOptions) (*LED, error) {
	period := opts.BlinkPeriod
	if period <= 0 {
		period = DefaultBlinkPeriod
	}
	l := &LED{pin: pin, lit: gpio.High, dark: gpio.Low, half: period / 2, changed: make(chan struct{}, 1)}
	if opts.ActiveLow {
		l.lit, l.dark = gpio.Low, gpio.High
	}
	if err := l.write(false); err != nil {
		return nil, err
	}
	return l, nil
}

// Set changes what the LED shows; Run applies it at once. It never blocks.
func (l *LED) Set(s LEDState) {
	if LEDState(l.state.Swap(int32(s))) == s {
		return
	}
	select {
	case l.changed <- struct{}{}:
	default: // a change is already pending; Run will read the latest state
	}
}

// State returns the state last Set.
func (l *LED) State() LEDState { return LEDState(l.state.Load()) }

// Run drives the LED until ctx is done, then turns it off and returns nil.
// It returns early with an error if the pin cannot be written.
func (l *LED) Run(ctx context.Context) error {
	var (
		ticker *time.Ticker
		tick   <-chan time.Time
		on     bool
	)
	stop := func() {
		if ticker != nil {
			ticker.Stop()
			ticker, tick = nil, nil
		}
	}
	defer stop()
	apply := func() error {
		stop()
		s := l.State()
		on = s != LEDOff
		if s == LEDBlink {
			ticker = time.NewTicker(l.half)
			tick = ticker.C
		}
		return l.write(on)
	}
	select {
	case <-l.changed: // apply reads the latest state anyway
	default:
	}
	if err := apply(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return l.write(false)
		case <-l.changed:
			if err := apply(); err != nil {
				return err
			}
		case <-tick:
			on = !on
			if err := l.write(on); err != nil {
				return err
			}
		}
	}
}

func (l *LED) write(on bool) error {
	level := l.dark
	if on {
		level = l.lit
	}
	if err := l.pin.Out(level); err != nil {
		return fmt.Errorf("gpio: led %s: drive %s: %w", l.pin, level, err)
	}
	return nil
}
