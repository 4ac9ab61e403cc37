package gpio

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
)

func TestResetLinePulse(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		opts     ResetOptions
		cancelAt time.Duration // 0: never
		want     []change
		wantErr  error
	}{
		{
			name: "active low default width",
			want: []change{{0, gpio.High}, {0, gpio.Low}, {100 * ms, gpio.High}},
		},
		{
			name: "active high 250 ms",
			opts: ResetOptions{ActiveHigh: true, Width: 250 * ms},
			want: []change{{0, gpio.Low}, {0, gpio.High}, {250 * ms, gpio.Low}},
		},
		{
			name:     "cancelled mid-pulse still releases",
			opts:     ResetOptions{Width: 500 * ms},
			cancelAt: 40 * ms,
			want:     []change{{0, gpio.High}, {0, gpio.Low}, {40 * ms, gpio.High}},
			wantErr:  context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pin := newTracePin("nRESET")
				r, err := NewResetLine(pin, tt.opts)
				if err != nil {
					t.Fatalf("NewResetLine: %v", err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.cancelAt > 0 {
					time.AfterFunc(tt.cancelAt, cancel)
				}
				if err := r.Pulse(ctx); !errors.Is(err, tt.wantErr) {
					t.Fatalf("Pulse = %v, want %v", err, tt.wantErr)
				}
				got := pin.trace()
				if len(got) != len(tt.want) {
					t.Fatalf("trace = %v, want %v", got, tt.want)
				}
				for i := range tt.want {
					if got[i] != tt.want[i] {
						t.Errorf("change %d = %v, want %v", i, got[i], tt.want[i])
					}
				}
				if r.Pulses() != 1 {
					t.Errorf("Pulses = %d, want 1", r.Pulses())
				}
			})
		})
	}
}

func TestResetLineErrors(t *testing.T) {
	pin := newTracePin("nRESET")
	pin.failOut = errPin
	_, err := NewResetLine(pin, ResetOptions{})
	if !errors.Is(err, errPin) || err.Error() != "gpio: reset nRESET(5): release (High): pin write failed" {
		t.Errorf("NewResetLine on a failing pin = %v", err)
	}

	pin.failOut = nil
	r, err := NewResetLine(pin, ResetOptions{})
	if err != nil {
		t.Fatalf("NewResetLine: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Pulse(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Pulse with cancelled ctx = %v, want context.Canceled", err)
	}
	if len(pin.trace()) != 1 || r.Pulses() != 0 {
		t.Errorf("Pulse with cancelled ctx touched the pin: %v, pulses %d", pin.trace(), r.Pulses())
	}

	pin.failOut = errPin
	if err := r.Pulse(t.Context()); !errors.Is(err, errPin) || !strings.Contains(err.Error(), "assert (Low)") {
		t.Errorf("Pulse on a failing pin = %v, want the assert error", err)
	}
}

func TestByNameMissingPin(t *testing.T) {
	const name = "TIMENODE_NO_SUCH_PIN"
	_, err := ByName(name)
	if !errors.Is(err, ErrNoPin) {
		t.Fatalf("ByName(%s) = %v, want ErrNoPin", name, err)
	}
	if !strings.HasPrefix(err.Error(), "gpio: open "+name+": no such GPIO pin: this machine has ") {
		t.Errorf("ByName error = %q, want it to name the pin", err)
	}
}
