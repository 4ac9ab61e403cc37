package gpio

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// ErrNoPin is returned by ByName when no GPIO has the requested name.
var ErrNoPin = errors.New("no such GPIO pin")

// ByName initialises periph's host drivers and returns the GPIO pin with the
// given name (for example "GPIO17" on a Raspberry Pi, or a gpiochip line
// name), or an error wrapping ErrNoPin.
func ByName(name string) (gpio.PinIO, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("gpio: open %s: initialise periph host drivers: %w", name, err)
	}
	pin := gpioreg.ByName(name)
	if pin == nil {
		return nil, fmt.Errorf("gpio: open %s: %w: this machine has %d GPIO pins; "+
			"check the pin name and that the GPIO driver is loaded", name, ErrNoPin, len(gpioreg.All()))
	}
	return pin, nil
}
