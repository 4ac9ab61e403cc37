package pps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// skewedClock reads the synctest bubble's clock plus a fixed skew, so tests
// can tell the injected clock's reading from time.Now.
type skewedClock struct{ skew time.Duration }

func (c skewedClock) Now() time.Time { return time.Now().Add(c.skew) }

// recordingPin is a gpiotest pin that remembers how In was called.
type recordingPin struct {
	*gpiotest.Pin
	inPull gpio.Pull
	inEdge gpio.Edge
}

func (p *recordingPin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.inPull, p.inEdge = pull, edge
	return p.Pin.In(pull, edge)
}

func newTestPin() *gpiotest.Pin {
	return &gpiotest.Pin{N: "GPIO18", Num: 18, Clock: clockwork.NewRealClock(), EdgesChan: make(chan gpio.Level)}
}

func TestNewGPIOConfiguresInput(t *testing.T) {
	tests := []struct {
		name     string
		opts     GPIOOptions
		wantEdge gpio.Edge
		wantPull gpio.Pull
		wantErr  string
	}{
		{name: "defaults to rising edge", wantEdge: gpio.RisingEdge, wantPull: gpio.PullNoChange},
		{name: "inverted pulse", opts: GPIOOptions{Edge: gpio.FallingEdge, Pull: gpio.PullDown},
			wantEdge: gpio.FallingEdge, wantPull: gpio.PullDown},
		{name: "both edges refused", opts: GPIOOptions{Edge: gpio.BothEdges},
			wantErr: "pps: gpio GPIO18(18): edge BothEdges: want RisingEdge or FallingEdge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pin := &recordingPin{Pin: newTestPin()}
			g, err := NewGPIO(pin, skewedClock{}, tt.opts)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("NewGPIO error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewGPIO: %v", err)
			}
			if pin.inEdge != tt.wantEdge || pin.inPull != tt.wantPull {
				t.Errorf("In(%s, %s), want In(%s, %s)", pin.inPull, pin.inEdge, tt.wantPull, tt.wantEdge)
			}
			if g.timeout != DefaultGPIOTimeout || g.period != DefaultGPIOPeriod {
				t.Errorf("timeout, period = %v, %v; want defaults", g.timeout, g.period)
			}
		})
	}
}

func TestNewGPIOPinError(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO4", Num: 4} // no EdgesChan: gpiotest refuses edge detection
	_, err := NewGPIO(pin, skewedClock{}, GPIOOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "pps: gpio GPIO4(4): configure input on RisingEdge: ") {
		t.Errorf("NewGPIO error = %v, want one naming the pin and operation", err)
	}
}

func TestGPIOFetch(t *testing.T) {
	const skew = time.Hour
	tests := []struct {
		name      string
		edges     []time.Duration // edge times after the start
		wantSeq   []uint64
		wantStats Stats
	}{
		{
			name:      "every second",
			edges:     []time.Duration{time.Second, 2 * time.Second, 3 * time.Second},
			wantSeq:   []uint64{1, 2, 3},
			wantStats: Stats{Pulses: 3},
		},
		{
			name:      "two missing pulses, two timeouts",
			edges:     []time.Duration{time.Second, 2 * time.Second, 5200 * time.Millisecond},
			wantSeq:   []uint64{1, 2, 5},
			wantStats: Stats{Pulses: 3, Missed: 2, Timeouts: 2},
		},
		{
			name:      "late edge within the period",
			edges:     []time.Duration{time.Second, 2400 * time.Millisecond, 3 * time.Second},
			wantSeq:   []uint64{1, 2, 3},
			wantStats: Stats{Pulses: 3},
		},
		{
			name:      "double edge advances by one",
			edges:     []time.Duration{time.Second, 1005 * time.Millisecond, 2 * time.Second},
			wantSeq:   []uint64{1, 2, 3},
			wantStats: Stats{Pulses: 3},
		},
		{
			name:      "no edge at all",
			wantStats: Stats{Timeouts: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pin := newTestPin()
				g, err := NewGPIO(pin, skewedClock{skew}, GPIOOptions{})
				if err != nil {
					t.Fatalf("NewGPIO: %v", err)
				}
				start := time.Now()
				go func() {
					for _, at := range tt.edges {
						time.Sleep(time.Until(start.Add(at)))
						pin.EdgesChan <- gpio.High
					}
				}()
				var got []Pulse
				for len(got) < len(tt.edges) {
					p, err := g.Fetch(t.Context())
					if errors.Is(err, ErrTimeout) {
						continue
					}
					if err != nil {
						t.Fatalf("Fetch: %v", err)
					}
					got = append(got, p)
				}
				if len(tt.edges) == 0 {
					if _, err := g.Fetch(t.Context()); !errors.Is(err, ErrTimeout) {
						t.Fatalf("Fetch with no edge = %v, want ErrTimeout", err)
					}
					if waited := time.Since(start); waited != DefaultGPIOTimeout {
						t.Errorf("Fetch gave up after %v, want %v", waited, DefaultGPIOTimeout)
					}
				}
				for i, p := range got {
					want := Pulse{Local: start.Add(tt.edges[i] + skew), Seq: tt.wantSeq[i], Quality: QualityGPIO}
					if !p.Local.Equal(want.Local) || p.Seq != want.Seq || p.Quality != want.Quality {
						t.Errorf("pulse %d = %+v, want %+v", i, p, want)
					}
				}
				if s := g.Stats(); s != tt.wantStats {
					t.Errorf("Stats = %+v, want %+v", s, tt.wantStats)
				}
			})
		})
	}
}

func TestGPIOFetchCancelled(t *testing.T) {
	g, err := NewGPIO(newTestPin(), skewedClock{}, GPIOOptions{})
	if err != nil {
		t.Fatalf("NewGPIO: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Fetch(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch with cancelled ctx = %v, want context.Canceled", err)
	}
	if s := g.Stats(); s != (Stats{}) {
		t.Errorf("Stats after cancelled Fetch = %+v, want zero", s)
	}
}

func TestOpenGPIOMissingPin(t *testing.T) {
	const name = "TIMENODE_NO_SUCH_PIN"
	_, err := OpenGPIO(name, skewedClock{}, GPIOOptions{})
	if !errors.Is(err, ErrNoPin) {
		t.Fatalf("OpenGPIO(%s) = %v, want ErrNoPin", name, err)
	}
	if !strings.HasPrefix(err.Error(), "pps: gpio "+name+": no such GPIO pin: this machine has ") {
		t.Errorf("OpenGPIO error = %q, want it to name the pin", err)
	}
}
