package pps

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"github.com/aunsorm/timenode/hw/clock"
)

// Defaults of GPIOOptions.
const (
	DefaultGPIOTimeout = 1500 * time.Millisecond
	DefaultGPIOPeriod  = time.Second
)

// ErrNoPin is returned by OpenGPIO when no GPIO has the requested name.
var ErrNoPin = errors.New("no such GPIO pin")

// GPIOOptions configure a GPIO edge source.
type GPIOOptions struct {
	// Edge is the edge that marks the second: gpio.RisingEdge (the zero
	// value gpio.NoEdge means rising) or gpio.FallingEdge for an inverted
	// pulse.
	Edge gpio.Edge
	// Pull is the pin's pull resistor; the zero value leaves it unchanged.
	Pull gpio.Pull
	// Timeout bounds each Fetch; zero means DefaultGPIOTimeout.
	Timeout time.Duration
	// Period is the nominal pulse period used to count missed edges from
	// the gap between two edges; zero means DefaultGPIOPeriod.
	Period time.Duration
}

// GPIO is a Source reading edges from a GPIO pin where no kernel PPS driver
// exists. periph's WaitForEdge returns no kernel timestamp, so the edge is
// timestamped with the clock right after the wait returns; the pulse is
// reported with QualityGPIO, and its error includes interrupt and scheduling
// latency.
//
// GPIO has no hardware sequence number. Pulse.Seq advances by the number of
// periods between an edge and the previous one (at least 1), so a gap in
// Seq means missed pulses as for the kernel source, and Stats counts them;
// an edge that comes too early (a bounce or a double edge) still advances
// Seq by one and is for the caller to reject. Fetch must not be called
// concurrently; Stats may be.
type GPIO struct {
	pin     gpio.PinIO
	clk     clock.Clock
	timeout time.Duration
	period  time.Duration

	mu   sync.Mutex // serialises Fetch
	seq  uint64
	last time.Time

	counters counters
}

// NewGPIO configures pin as an input that reports the chosen edge and
// returns a source reading it, timestamping edges with clk.
func NewGPIO(pin gpio.PinIO, clk clock.Clock, opts GPIOOptions) (*GPIO, error) {
	edge := opts.Edge
	switch edge {
	case gpio.NoEdge:
		edge = gpio.RisingEdge
	case gpio.RisingEdge, gpio.FallingEdge:
	default:
		return nil, fmt.Errorf("pps: gpio %s: edge %s: want RisingEdge or FallingEdge", pin, edge)
	}
	if err := pin.In(opts.Pull, edge); err != nil {
		return nil, fmt.Errorf("pps: gpio %s: configure input on %s: %w", pin, edge, err)
	}
	g := &GPIO{pin: pin, clk: clk, timeout: opts.Timeout, period: opts.Period}
	if g.timeout <= 0 {
		g.timeout = DefaultGPIOTimeout
	}
	if g.period <= 0 {
		g.period = DefaultGPIOPeriod
	}
	return g, nil
}

// OpenGPIO initialises periph's host drivers, finds the pin by name (for
// example "GPIO18" on a Raspberry Pi) and returns NewGPIO on it.
func OpenGPIO(name string, clk clock.Clock, opts GPIOOptions) (*GPIO, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("pps: gpio %s: initialise periph host drivers: %w", name, err)
	}
	pin := gpioreg.ByName(name)
	if pin == nil {
		return nil, fmt.Errorf("pps: gpio %s: %w: this machine has %d GPIO pins; "+
			"check the pin name and that the GPIO driver is loaded", name, ErrNoPin, len(gpioreg.All()))
	}
	return NewGPIO(pin, clk, opts)
}

// Pin names the pin the source reads.
func (g *GPIO) Pin() string { return g.pin.String() }

// Stats returns the source's counters.
func (g *GPIO) Stats() Stats { return g.counters.snapshot() }

// Fetch waits for the next edge for up to the configured timeout and returns
// it with QualityGPIO, or an error wrapping ErrTimeout when none came. ctx is
// checked before waiting; Close interrupts a wait on real pins.
func (g *GPIO) Fetch(ctx context.Context) (Pulse, error) {
	if err := ctx.Err(); err != nil {
		return Pulse{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.pin.WaitForEdge(g.timeout) {
		g.counters.timeouts.Add(1)
		return Pulse{}, fmt.Errorf("pps: gpio %s: %w", g.pin, ErrTimeout)
	}
	now := g.clk.Now()
	step := uint64(1)
	if !g.last.IsZero() {
		if n := (now.Sub(g.last) + g.period/2) / g.period; n > 1 {
			step = uint64(n)
		}
	}
	if g.seq > 0 {
		g.counters.missed.Add(step - 1)
	}
	g.seq += step
	g.last = now
	g.counters.pulses.Add(1)
	return Pulse{Local: now, Seq: g.seq, Quality: QualityGPIO}, nil
}

// Close stops edge detection on the pin, which ends a wait in progress.
func (g *GPIO) Close() error {
	if err := g.pin.Halt(); err != nil {
		return fmt.Errorf("pps: gpio %s: halt: %w", g.pin, err)
	}
	return nil
}

var _ Source = (*GPIO)(nil)
