package gpio

import (
	"errors"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// change is one level written to a pin, at the bubble's time.
type change struct {
	at    time.Duration // since the pin was made
	level gpio.Level
}

// tracePin is a gpiotest pin that records every level written to it and
// can be made to fail writes.
type tracePin struct {
	*gpiotest.Pin
	start time.Time

	mu      sync.Mutex
	changes []change
	failOut error
}

func newTracePin(name string) *tracePin {
	return &tracePin{Pin: &gpiotest.Pin{N: name, Num: 5}, start: time.Now()}
}

func (p *tracePin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failOut != nil {
		return p.failOut
	}
	p.changes = append(p.changes, change{at: time.Since(p.start), level: l})
	return p.Pin.Out(l)
}

func (p *tracePin) trace() []change {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]change(nil), p.changes...)
}

var errPin = errors.New("pin write failed")
